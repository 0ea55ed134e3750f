package bench

import (
	"fmt"
	"time"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connectors/generic"
	"github.com/dealsync/dealsync/mapping"
)

// checkBenchConnection refuses an in-process connection the bench cannot
// measure, before anything starts (checkSandboxTarget has checked where
// its invoices go):
//
//   - its source must be generic: the bench sends the generic source's
//     signed deliveries, which no other source takes;
//   - without --secret (secretGiven false), its source.secret must
//     resolve: the deliveries are signed with it (connectionSecret);
//   - its mapping must make a bench deal's invoice.reference the deal's
//     id. The bench finds each deal's invoices in the sandbox ERP by
//     reference (reconcile, waitInvoices, the sandbox's reference_prefix
//     listing), and the sandbox's invoices hold nothing else that names
//     the deal whatever the mapping: a mapping such as `"DS-" + deal.id`
//     made every invoice look lost, and one whose reference is not unique
//     per deal would hide duplicates. The mapping is evaluated on a bench
//     deal, as the run's map step would.
func checkBenchConnection(cfg *config.Config, connection string, secretGiven bool) error {
	conn, ok := cfg.Connections[connection]
	if !ok {
		return fmt.Errorf("the config has no connection %q (--connection)", connection)
	}
	if _, ok := conn.Source.Spec.(*generic.Config); !ok {
		return fmt.Errorf("connection %q has a %q source: the bench sends the generic source's signed deliveries (dealsync's own JSON), which only a generic source takes; give --connection of a connection whose source is generic (the dev config's demo)", connection, conn.Source.Type)
	}
	if !secretGiven {
		if _, err := connectionSecret(cfg, connection); err != nil {
			return err
		}
	}
	m, ok := cfg.Mappings.Loaded.Mapper(conn.Mapping)
	if !ok {
		return fmt.Errorf("connection %q: its mapping %q is not loaded", connection, conn.Mapping)
	}
	ev := makeEvents("check", 1, 0, time.Now())[0]
	evs, err := generic.ParseEvents(ev.body, ev.msgID)
	if err != nil || len(evs) != 1 {
		// The bench's own delivery: a bug of the bench, not of the options.
		return fmt.Errorf("the bench's delivery does not parse as the generic source's: %v", err)
	}
	inv, err := m.Map(evs[0])
	if err != nil {
		return fmt.Errorf("connection %q: its mapping %q cannot map the bench's deals (every run would fail): %w", connection, m.Name(), err)
	}
	if inv.Reference != ev.dealID {
		expr := ""
		if f, ok := m.(*mapping.File); ok && f.ReferenceExpression() != "" {
			expr = fmt.Sprintf(" (invoice.reference: %s)", f.ReferenceExpression())
		}
		return fmt.Errorf("connection %q uses mapping %q, which makes the invoice of bench deal %q reference %q%s: the bench finds a deal's invoices in the sandbox ERP by reference and needs invoice.reference to be the deal id (deal.id, as in the built-in mapping); it would report every invoice lost. Give --connection of a connection whose mapping keeps the deal id as the reference (the dev config's demo), or add one for the bench",
			connection, m.Name(), ev.dealID, inv.Reference, expr)
	}
	return nil
}

// connectionSecret is the Standard Webhooks secret of the connection's
// generic source in cfg (source.secret, after the config's DEALSYNC_*
// overrides and env:/file: references): what the in-process stack's
// intake checks the bench's deliveries against when --secret is not given.
func connectionSecret(cfg *config.Config, connection string) (string, error) {
	conn := cfg.Connections[connection]
	spec, ok := conn.Source.Spec.(*generic.Config)
	if !ok {
		return "", fmt.Errorf("connection %q has a %q source, not a generic one: it has no Standard Webhooks secret", connection, conn.Source.Type)
	}
	if spec.Secret.IsZero() {
		return "", fmt.Errorf("connection %q: source.secret is not set: give --secret", connection)
	}
	s, err := spec.Secret.Reveal()
	if err != nil {
		return "", fmt.Errorf("connection %q: source.secret (%s): %w: give --secret", connection, spec.Secret.Describe(), err)
	}
	return s, nil
}
