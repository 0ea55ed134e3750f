package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dealsync/dealsync/app"
	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connections"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/internal/wording"
)

func newConfigCmd(g *globalFlags) *cobra.Command {
	root := &cobra.Command{Use: "config", Short: "Check a config before going live"}
	var dev, withTemporal, withCRM bool
	check := &cobra.Command{
		Use:   "check",
		Short: "Validate the config, build every connection and, with --temporal and --crm, check the Temporal namespace and the CRMs' write-back fields",
		Long: `check does what serve and worker do before they start, without starting
anything: it loads the config (file and DEALSYNC_* overrides) and validates it,
resolves every secret, builds every source and target and compiles the
mappings. Nothing is sent to an ERP, nor to a CRM (but with --crm). It
prints what the config describes: connections, their target, trigger and
mapping, where a generic connection writes its invoices back (the signed
POST to source.write_back.url), and the Temporal frontend, and warnings: DEALSYNC_* variables
that set no key, won stages that miss the source's, a secret shorter than
its scheme asks for, HubSpot
without intake.public_base_url, a Xero target with check_reference or an
http target with lookup_invoices whose connection's mapping sets an
invoice.reference that does not read deal.id, a QuickBooks target whose
connection's mapping makes the reference the bare deal id, a Xero target
with line_amount_types Inclusive for a Pipedrive source's net lines, a
HubSpot, Pipedrive or Salesforce connection whose mapping's trigger reads
deal fields their thin webhooks do not carry (deal.amount: the trigger
sees them empty and skips won deals), a mapping that reads a deal.raw key
a HubSpot, Pipedrive or Salesforce fetch never has (it is "" for every
deal), a
connection whose webhook secret is dealsync's public dev secret
(config.DevSecret), which serve and dev refuse when intake.listen is not a
loopback address (exit 1).

With --dev it checks the config as ` + "`dealsync dev`" + ` does before it starts, without
binding a port: Temporal is dev's embedded server (127.0.0.1:<dev.frontend_port>;
a temporal.address that names another stops it, exit 2, as it stops the
other --dev commands; temporal.tls or temporal.api_key is named in a
warning), its built-in demo connection signed with the public dev
secret is a note, and a sandbox target that is not dev's sandbox ERP is a
warning, or on this machine a refusal (exit 1), as dev says it.

With --temporal it also connects to that frontend and checks that the
namespace has dealsync's search attributes (without them every start fails),
printing the commands that register the missing ones.

With --crm it also asks the CRM of each HubSpot, Pipedrive and Salesforce
connection, for every configured account and reading only, whether the deal
fields its write-back sets (the source's write_back.* keys) exist and can be
written: HubSpot reads each property's definition (which needs the app scope
crm.schemas.deals.read, a scope of the check, not of the write-back),
Pipedrive lists the company's deal fields, Salesforce describes the
Opportunity. A field that is missing, read-only, of a type that cannot hold
its value or too short is named with its account, its setting and what to
do (one that takes only some of the ERP's values, a number field for an
invoice id, is a warning that does not fail the check); else it prints
"write-back fields ok" for the account. For Pipedrive it also lists the
company's organization fields and names a fetch.organization_email_field
or fetch.organization_tax_id_field that is not the key of a custom one
(saying which field it may have meant: the one whose name it is, or whose
key or name it is a typo of) or whose value is not text or a number, as
such a field is read empty from every deal; else "fetch fields ok". For
Salesforce it names a fetch.currency_field or fetch.extra_fields field the
Opportunity's describe does not list (saying which field it may be a typo
of), as Salesforce refuses the fetch's query of it (INVALID_FIELD) and every
run fails, and an account whose credentials log into another org than its
key names (the token's answer names the org). It
gets tokens as the workers do: run it where their token_file is. Nothing is written
to the CRM. Without the check such a field is found only once an invoice
exists: every deal's run then ends WriteBackFailed. A CRM that does not
answer (or refuses the check) is named as such, each call bounded by ` + wording.Duration(connectors.WriteBackCheckCallTimeout) + `.
A generic connection's write_back.url is not called (a POST would be a
delivery): the check says where it writes back, or that it writes nothing
back.

Exit status: 0 all good; 2 the config is invalid (every problem listed with its
key, mapping files that do not compile with file:line:col); 1 anything else: a
source or target that cannot be built from the config (also said as an
invalid configuration, found when it is built: a base_url with the API's
path, a private key that is no PEM key), Temporal not
reachable, or its namespace lacks the search attributes, a write-back field
a CRM would refuse, a fetch field it does not have, or a CRM account that did
not answer or refused the check (--crm), or a refusal of serve or (with --dev) dev.`,
		Example: `  dealsync config check --config dealsync.yaml
  dealsync config check --config dealsync.yaml --temporal
  dealsync config check --config dealsync.yaml --crm    # before going live: the CRMs' write-back fields
  dealsync config check --dev            # the config as ` + "`dealsync dev`" + ` sees it`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The dev Temporal warnings are printed below, not on stderr.
			cfg, err := g.loadSilently(dev)
			if err != nil {
				return err
			}
			if err := cfg.DevAddressConflict(); err != nil {
				return &exitError{code: 2, err: err} // as the --dev commands stop
			}
			cfg, set, quiet, err := g.buildQuietly(cfg)
			if err != nil {
				return err
			}
			// What serve (the public dev secret), or with --dev what dev
			// (its sandbox ERP's address unbound), would say or refuse.
			var notices []app.Notice
			var refusal error
			if dev {
				// StartDev checks the ports first, with the ports it
				// is given; the config's here.
				notices, refusal = app.CheckDevConfig(cfg, cfg.Dev.SandboxListen)
				refusal = errors.Join(app.DevPortClash(cfg, cfg.Dev.FrontendPort, cfg.Dev.UIPort), refusal)
			} else {
				notices, refusal = app.CheckDevSecret(cfg)
			}
			out := cmd.OutOrStdout()
			describe(out, cfg, set, notices)
			if refusal != nil {
				return &exitError{code: 1, err: refusal}
			}
			// The Temporal client's TLS files and API key, read as serve
			// and worker read them before they dial (dev serves its own
			// frontend, without them); after the warnings, which may say
			// why (a relative path).
			if !dev {
				if _, err := app.ClientOptions(cfg, quiet); err != nil {
					return &exitError{code: 1, err: fmt.Errorf("invalid configuration%s: serve and worker would not start: %w", inFile(g.configPath), err)}
				}
			}
			var failed []error
			if withTemporal {
				if err := checkTemporal(cmd.Context(), out, cfg, quiet); err != nil {
					failed = append(failed, err)
				}
			}
			if withCRM {
				if err := checkCRM(cmd.Context(), out, set); err != nil {
					failed = append(failed, err)
				}
			}
			if len(failed) > 0 {
				return &exitError{code: 1, err: errors.Join(failed...)}
			}
			fmt.Fprintln(out, "ok")
			return nil
		},
	}
	check.Flags().BoolVar(&dev, "dev", false, "check the config as dealsync dev sees it (with its built-in demo connection and sandbox target)")
	check.Flags().BoolVar(&withTemporal, "temporal", false, "also connect to temporal.address and check the namespace's search attributes")
	check.Flags().BoolVar(&withCRM, "crm", false, "also ask each CRM account, reading only, whether the deal fields the write-back sets exist and can be written")
	root.AddCommand(check)
	return root
}

// describe prints what the config sets up, with the notices of the checks
// of serve or dev ("warning", or "note" for those dev logs at info).
func describe(w io.Writer, cfg *config.Config, set *connections.Set, notices []app.Notice) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	t := cfg.Temporal
	fmt.Fprintf(tw, "temporal\t%s, namespace %s, task queue %s\n", t.Address, t.Namespace, t.TaskQueue)
	public := cfg.Intake.PublicBaseURL
	if public == "" {
		public = "http://" + config.DialAddr(cfg.Intake.Listen)
	}
	fmt.Fprintf(tw, "intake\tlistens on %s; webhooks at %s/webhooks/<connection>\n", cfg.Intake.Listen, strings.TrimRight(public, "/"))
	if e := cfg.Temporal.Encryption; e.On() {
		fmt.Fprintf(tw, "payloads\t%s\n", encryptionSays(e))
	}
	fmt.Fprintf(tw, "external calls\t%s activities, retried from %s up to %s apart\n", cfg.Workflow.ExternalCalls,
		wording.Duration(cfg.Workflow.Retry.InitialInterval), wording.Duration(cfg.Workflow.Retry.MaximumInterval))
	for _, w := range app.EnvWarnings(cfg) {
		fmt.Fprintf(tw, "warning\t%s\n", w)
	}
	for _, n := range notices {
		kind := "warning"
		if n.Level < slog.LevelWarn {
			kind = "note"
		}
		fmt.Fprintf(tw, "%s\t%s\n", kind, n.Msg)
	}
	// A mapping's warnings once, naming the connections that use it.
	for _, w := range app.MappingWarnings(set) {
		fmt.Fprintf(tw, "warning\t%s\n", w)
	}
	names := make([]string, 0, len(cfg.Targets))
	for name := range cfg.Targets {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		fmt.Fprintf(tw, "target %s\t%s\n", name, cfg.Targets[name].Type)
	}
	for _, name := range set.Names() {
		c, _ := set.Get(name)
		mapping := c.MappingName // as runs list names it: the built-in one is "default"
		if mapping == "" {
			mapping = "default"
		}
		line := fmt.Sprintf("%s source → target %s; won stages %s; mapping %s (%s)",
			c.SourceType, c.TargetName, strings.Join(c.WonStages, ", "), mapping, c.Mapper.Hash())
		if len(c.AccountTargets) > 0 {
			line += fmt.Sprintf("; %d accounts with their own target", len(c.AccountTargets))
		}
		switch {
		case c.Fetcher != nil:
			line += fmt.Sprintf("; deals fetched after %s", wording.Duration(c.SettleTime))
		case c.SettleTime > 0:
			line += fmt.Sprintf("; runs settle %s", wording.Duration(c.SettleTime))
		}
		if c.Linger > 0 {
			line += fmt.Sprintf("; invoiced runs linger %s", wording.Duration(c.Linger))
		}
		if d, ok := c.WriteBacker.(connectors.WriteBackDescriber); ok {
			line += "; result written back: " + d.DescribeWriteBack()
		} else if c.WriteBacker != nil {
			line += "; result written back"
		}
		fmt.Fprintf(tw, "connection %s\t%s\n", name, line)
		for _, w := range app.Warnings(cfg, c) {
			fmt.Fprintf(tw, "  warning\t%s\n", w)
		}
	}
}

// checkTemporal connects to the configured frontend and checks the
// namespace's search attributes.
func checkTemporal(ctx context.Context, w io.Writer, cfg *config.Config, logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := dial(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := app.CheckSearchAttributes(ctx, c, cfg.Temporal.Namespace); err != nil {
		return app.OnServer(err, cfg.Temporal)
	}
	fmt.Fprintf(w, "temporal: %s answers; namespace %s has dealsync's search attributes\n", cfg.Temporal.Address, cfg.Temporal.Namespace)
	if warning, err := app.RetentionWarning(ctx, c, cfg.Temporal); warning != "" {
		fmt.Fprintf(w, "warning: %s\n", warning)
	} else if err != nil {
		fmt.Fprintf(w, "warning: could not read the namespace's retention: %v\n", err)
	}
	return nil
}

// crmCheckTimeout bounds the whole of `config check --crm`; each API call
// is bounded by connectors.WriteBackCheckCallTimeout.
const crmCheckTimeout = 2 * time.Minute

// checkCRM asks the CRM of each connection whose source can check its
// write-back (connectors.WriteBackChecker), account by account and
// reading only, whether the deal fields the write-back sets exist and can
// be written, and of each whose source can check the fields its fetch
// reads by a setting (connectors.FetchFieldChecker) whether they exist,
// and prints what each account answered. The error counts the fields a
// CRM would refuse or not have and the accounts that did not answer or
// refused the check (each once).
func checkCRM(ctx context.Context, w io.Writer, set *connections.Set) error {
	ctx, cancel := context.WithTimeout(ctx, crmCheckTimeout)
	defer cancel()
	n := crmCheckCounts{failed: map[string]bool{}}
	for _, name := range set.Names() {
		c, _ := set.Get(name)
		checkWriteBackFields(ctx, w, name, c, &n)
		checkFetchFields(ctx, w, name, c, &n)
	}
	var why []string
	if n.problems > 0 {
		why = append(why, fmt.Sprintf("%d write-back field(s) a CRM would refuse (listed above): every deal's run would end WriteBackFailed, after its invoice is made", n.problems))
	}
	if n.fetchProblems > 0 {
		why = append(why, fmt.Sprintf("%d fetch field(s) a CRM does not have as configured (listed above): each says what it breaks", n.fetchProblems))
	}
	if n.unanswered > 0 {
		why = append(why, fmt.Sprintf("%d CRM account(s) did not answer: their fields are not checked; run the check again", n.unanswered))
	}
	if n.refused > 0 {
		why = append(why, fmt.Sprintf("%d CRM account(s) refused the check (listed above)", n.refused))
	}
	if len(why) > 0 {
		return errors.New("crm: " + strings.Join(why, "; "))
	}
	return nil
}

// crmCheckCounts are what checkCRM's error counts; failed holds the
// connection and account pairs already counted as not answering or
// refusing, so that an account is counted once.
type crmCheckCounts struct {
	problems, fetchProblems, unanswered, refused int
	failed                                       map[string]bool
}

// failure counts an account's check that got an error, once per account.
func (n *crmCheckCounts) failure(connection string, r connectors.WriteBackCheck) {
	key := connection + "\x00" + r.Account
	if n.failed[key] {
		return
	}
	n.failed[key] = true
	if r.Unanswered() {
		n.unanswered++
	} else {
		n.refused++
	}
}

// checkWriteBackFields is checkCRM's check of connection c's write-back.
func checkWriteBackFields(ctx context.Context, w io.Writer, name string, c *connections.Connection, n *crmCheckCounts) {
	checker, ok := c.Source.(connectors.WriteBackChecker)
	described, isDescribed := c.WriteBacker.(connectors.WriteBackDescriber)
	switch {
	case c.WriteBacker == nil && c.SourceType == "generic":
		fmt.Fprintf(w, "crm: connection %s: the generic source writes nothing back (source.write_back.url is not set)\n", name)
		return
	case c.WriteBacker == nil:
		fmt.Fprintf(w, "crm: connection %s: the %s source writes nothing back (no write-back field is configured)\n", name, c.SourceType)
		return
	case isDescribed && !ok:
		// Nothing to ask without sending a delivery.
		fmt.Fprintf(w, "crm: connection %s: the %s source writes back %s; not checked (the check would have to send a delivery)\n", name, c.SourceType, described.DescribeWriteBack())
		return
	case !ok:
		fmt.Fprintf(w, "crm: connection %s: the %s source cannot check its write-back fields\n", name, c.SourceType)
		return
	}
	for _, r := range checker.CheckWriteBack(ctx) {
		switch {
		case r.Err != nil && r.Unanswered():
			n.failure(name, r)
			fmt.Fprintf(w, "crm: connection %s: %s did not answer: %v; its write-back fields are not checked\n", name, r.Where, r.Err)
		case r.Err != nil:
			n.failure(name, r)
			fmt.Fprintf(w, "crm: connection %s: %s refused the check: %v\n", name, r.Where, r.Err)
		case len(r.Fields) == 0:
			fmt.Fprintf(w, "crm: connection %s: %s: no write-back fields are configured: nothing is written back\n", name, r.Where)
		case len(r.Problems) == 0:
			fmt.Fprintf(w, "crm: connection %s: %s: write-back fields ok (%s)\n", name, r.Where, strings.Join(r.Fields, ", "))
		default:
			for _, p := range r.Problems {
				if p.Doubt {
					// It depends on the ERP's values: said, not failed.
					fmt.Fprintf(w, "crm: connection %s: warning: %s\n", name, p)
					continue
				}
				n.problems++
				fmt.Fprintf(w, "crm: connection %s: %s\n", name, p)
			}
			if !slices.ContainsFunc(r.Problems, func(p connectors.WriteBackProblem) bool { return !p.Doubt }) {
				fmt.Fprintf(w, "crm: connection %s: %s: write-back fields ok but for the warnings above (%s)\n", name, r.Where, strings.Join(r.Fields, ", "))
			}
		}
	}
}

// checkFetchFields is checkCRM's check of the fields connection c's fetch
// reads by a setting (Pipedrive's fetch.organization_*_field); a source
// without such settings, or with none set, is not asked.
func checkFetchFields(ctx context.Context, w io.Writer, name string, c *connections.Connection, n *crmCheckCounts) {
	checker, ok := c.Source.(connectors.FetchFieldChecker)
	if !ok {
		return
	}
	for _, r := range checker.CheckFetchFields(ctx) {
		switch {
		case len(r.Fields) == 0:
			// None configured: nothing asked, nothing to say.
		case r.Err != nil && r.Unanswered():
			n.failure(name, r)
			fmt.Fprintf(w, "crm: connection %s: %s did not answer: %v; its fetch fields are not checked\n", name, r.Where, r.Err)
		case r.Err != nil:
			n.failure(name, r)
			fmt.Fprintf(w, "crm: connection %s: %s refused the check of its fetch fields: %v\n", name, r.Where, r.Err)
		case len(r.Problems) == 0:
			fmt.Fprintf(w, "crm: connection %s: %s: fetch fields ok (%s)\n", name, r.Where, strings.Join(r.Fields, ", "))
		default:
			for _, p := range r.Problems {
				n.fetchProblems++
				fmt.Fprintf(w, "crm: connection %s: %s\n", name, p)
			}
		}
	}
}

// inFile is " in path", or "" without a config file, as the config's
// errors name it.
func inFile(path string) string {
	if path == "" {
		return ""
	}
	return " in " + path
}

// encryptionSays tells how temporal.encryption treats the payloads.
func encryptionSays(e config.Encryption) string {
	ids := slices.Sorted(maps.Keys(e.Keys))
	if e.KeyID == "" {
		return "not encrypted, those stored encrypted decrypted with keys " + strings.Join(ids, ", ") + " (temporal.encryption.key_id unset)"
	}
	return "encrypted with key " + e.KeyID + ", decrypted with keys " + strings.Join(ids, ", ")
}
