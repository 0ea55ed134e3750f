package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/app"
	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connections"
	"github.com/dealsync/dealsync/connectors"
	_ "github.com/dealsync/dealsync/connectors/all" // register every connector
	"github.com/dealsync/dealsync/internal/wording"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/mapping/dealfile"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/workflows"
)

// PlaceholderCustomerID stands for the ERP customer id in planned
// requests: the customer is found or created at run time.
const PlaceholderCustomerID = "<customer-id>"

func newMappingCmd(g *globalFlags) *cobra.Command {
	root := &cobra.Command{
		Use:   "mapping",
		Short: "Check and dry-run mappings (nothing is ever sent)",
		Long: `mapping works with the mapping files of the config (mappings.files,
mappings.dir). See docs/mappings.md.

Exit status: 0 success, 1 mapping or validation errors (or golden
mismatches), 2 usage or configuration errors.`,
	}
	root.AddCommand(newMappingTestCmd(g), newMappingLintCmd(g))
	return root
}

type mappingTestFlags struct {
	mapping, file, deal, dir, target, connection string
	fetch, account, save                         string
	json, update                                 bool
}

func newMappingTestCmd(g *globalFlags) *cobra.Command {
	f := &mappingTestFlags{}
	cmd := &cobra.Command{
		Use:   "test (--mapping NAME | --file PATH) (--deal FILE | --dir DIR | --connection NAME --fetch DEAL_ID)",
		Short: "Evaluate the trigger and the mapping on a sample deal event and print the invoice and the exact ERP request",
		Long: `test evaluates a mapping offline. With --deal it evaluates the trigger and
the mapping on one deal event (JSON: a generic source's body, as
` + "`dealsync webhook send`" + ` posts it, read as the intake reads it; or a deal
event in dealsync's own shape, as --save writes it: see docs/mappings.md),
computes and validates the invoice exactly as a run does, and prints the invoice
and the request the target would receive (method, URL, headers with
secrets masked, body): the connection's target, or the one its
account_targets give the event's account, as in a run. With --dir it
runs every golden case of DIR: NAME.deal.json with NAME.invoice.json (the
expected invoice) or NAME.error.txt (lines the expected error must
contain), and shows a diff for each mismatch; --update rewrites the
expected files instead.

With --fetch it reads a real deal from the CRM of --connection (a hubspot,
salesforce or pipedrive source; --account picks the portal, org or company
when the connection serves several) exactly as a run does after its settle
time, and tests the mapping on it; --save FILE writes that deal event, e.g.
as NAME.deal.json of a golden folder. Only GET requests (and the query of
the CRM's API) are made.

Nothing is ever written: not to the ERP, not to the CRM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageInJSON(cmd.OutOrStdout(), f, runMappingTest(cmd.Context(), cmd.OutOrStdout(), g, f))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.mapping, "mapping", "", "mapping name (a mapping file of the config, or \"default\")")
	fl.StringVar(&f.file, "file", "", "mapping file to test instead of a mapping of the config")
	fl.StringVar(&f.deal, "deal", "", "deal event JSON file (a generic source's body, or dealsync's event shape as --save writes it)")
	fl.StringVar(&f.dir, "dir", "", "golden folder: NAME.deal.json + NAME.invoice.json (or NAME.error.txt)")
	fl.StringVar(&f.fetch, "fetch", "", "id of a deal to read from the CRM of --connection (read-only)")
	fl.StringVar(&f.account, "account", "", "with --fetch: the CRM account (HubSpot portal id, Salesforce org id, Pipedrive company id) of the deal")
	fl.StringVar(&f.save, "save", "", "with --fetch: write the fetched deal event to this file")
	fl.StringVar(&f.target, "target", "", "target whose request to print (default: the connection's target for the event's account, as account_targets choose it; else the only/sandbox target)")
	fl.StringVar(&f.connection, "connection", "", "connection whose won stages and target to use (default: the first using the mapping)")
	fl.BoolVar(&f.json, "json", false, "machine-readable output")
	fl.BoolVar(&f.update, "update", false, "with --dir: rewrite the expected files from the current output")
	return cmd
}

func usage(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// loadForMappings loads the config (with the dev defaults, so that the
// sandbox target exists without a file). A config whose only problems are
// in the text of mapping files is a mapping error (exit 1), printed with
// positions; so is a connection naming a mapping that is missing because
// its file did not load. Any other problem, a mapping file or
// mappings.dir that cannot be read among them, is a config error (exit
// 2). Unless withSecrets, a secret that does not resolve here is no
// problem (config.WithoutSecrets): these commands send nothing, and run
// where the secrets are not at hand, as in a CI job.
func loadForMappings(g *globalFlags, withSecrets bool) (*config.Config, error) {
	opts := []config.Option{config.WithDevDefaults()}
	if !withSecrets {
		opts = append(opts, config.WithoutSecrets())
	}
	cfg, err := config.Load(g.configPath, opts...)
	if err == nil {
		return cfg, nil
	}
	var ce *config.Error
	if errors.As(err, &ce) && onlyMappingProblems(ce.Problems) {
		return nil, &exitError{code: 1, err: err}
	}
	return nil, &exitError{code: 2, err: err}
}

// onlyMappingProblems reports whether every problem is in the text of a
// mapping file (config.Problem.InMappingFile), or is a connection's
// mapping that went missing with them: not a file that cannot be read,
// a mappings.dir that is none, or any other key's problem.
func onlyMappingProblems(ps []config.Problem) bool {
	filesFailed := slices.ContainsFunc(ps, func(p config.Problem) bool { return p.InMappingFile })
	for _, p := range ps {
		connMapping := strings.HasPrefix(p.Key, "connections.") && strings.HasSuffix(p.Key, ".mapping")
		if !p.InMappingFile && !(connMapping && filesFailed) {
			return false
		}
	}
	return filesFailed
}

func runMappingTest(ctx context.Context, out io.Writer, g *globalFlags, f *mappingTestFlags) error {
	given := 0
	for _, v := range []string{f.deal, f.dir, f.fetch} {
		if v != "" {
			given++
		}
	}
	if given != 1 {
		return usage("give exactly one of --deal FILE, --dir DIR and --fetch DEAL_ID")
	}
	if f.fetch != "" && f.connection == "" {
		return usage("--fetch needs --connection: the connection whose CRM the deal is read from")
	}
	if (f.account != "" || f.save != "") && f.fetch == "" {
		return usage("--account and --save work with --fetch")
	}
	if f.mapping != "" && f.file != "" {
		return usage("give --mapping or --file, not both")
	}
	if f.update && f.dir == "" {
		return usage("--update works with --dir")
	}
	// --fetch reads the CRM: its secrets are needed, and one that does not
	// resolve is said at once, as a config error.
	cfg, err := loadForMappings(g, f.fetch != "")
	if err != nil {
		return mappingNotLoaded(out, f, err)
	}
	var m mapping.Mapper
	switch {
	case f.file != "":
		data, err := os.ReadFile(f.file)
		if err != nil {
			return usage("%v", err)
		}
		pm, err := mapping.Parse(f.file, data)
		if err != nil {
			return mappingNotLoaded(out, f, &exitError{code: 1, err: err})
		}
		m = pm
	default:
		name := f.mapping
		if name == "" && f.connection != "" {
			name = cfg.Connections[f.connection].Mapping
		}
		if name == "" && f.connection == "" {
			return usage("give --mapping NAME (defined: %s) or --file PATH", strings.Join(append([]string{mapping.DefaultName}, cfg.Mappings.Loaded.Names()...), ", "))
		}
		mm, ok := cfg.Mappings.Loaded.Mapper(name)
		if !ok {
			return usage("no mapping %q in the config (defined: %s)", name, strings.Join(append([]string{mapping.DefaultName}, cfg.Mappings.Loaded.Names()...), ", "))
		}
		m = mm
	}
	connName, won, targetName, err := pickConnection(cfg, f, m.Name())
	if err != nil {
		return err
	}
	note := pickedNote(cfg, f, m.Name(), connName)
	noConn := connName == ""
	if noConn {
		connName = unusedMappingConnection
	}

	// The connection as a run has it, when it can be built here (a source
	// whose config cannot is the run's concern for --deal and --dir: the
	// deal is taken as it is; --fetch needs it).
	var conn *connections.Connection
	var set *connections.Set
	var buildErr error
	var notBuilt string
	if !noConn {
		if set, buildErr = app.BuildConnections(cfg, quietLogger()); buildErr == nil {
			conn, _ = set.Get(connName)
		} else if f.fetch == "" && len(cfg.UnresolvedSecrets()) > 0 {
			notBuilt = fmt.Sprintf("connection %s was not built here, a secret of the config not being at hand (%s): the deal's account is taken as written, where a run keys it as its source does (a Salesforce org id in 15 characters or another case); set the secrets to test as a run does",
				connName, errLine(buildErr))
		}
	}
	// A CRM whose webhooks are thin (the deal is read in the run) has its
	// trigger judged on such a webhook of the deal, as the intake judges
	// it; a deal file that is one already is judged as it is. The source
	// type says so without being built (its credentials may not be at
	// hand).
	var webhookOf func(model.DealEvent) model.DealEvent
	if spec, ok := connectors.LookupSource(cfg.Connections[connName].Source.Type); ok && !noConn && spec.WebhookDeal != nil {
		webhookOf = func(ev model.DealEvent) model.DealEvent {
			if ev.Thin {
				return ev
			}
			ev.Thin, ev.Deal = true, spec.WebhookDeal(ev.Deal)
			return ev
		}
	}

	if f.dir != "" {
		opts := []mapping.GoldenOption{mapping.GoldenWonStages(won)}
		if webhookOf != nil {
			opts = append(opts, mapping.GoldenWebhook(webhookOf))
		}
		results, err := mapping.RunGolden(f.dir, m, f.update, dealfile.Read, opts...)
		if err != nil {
			return usage("%v%s", err, newGoldenCaseHint(f.dir, f.update, err))
		}
		failed, strays := 0, 0
		for _, r := range results {
			switch {
			case r.Stray != "":
				strays++
			case !r.OK:
				failed++
			}
		}
		if f.json {
			// "failed" counts every result that is not ok, the files that
			// are part of no case (stray) included.
			doc := map[string]any{"mapping": m.Name(), "hash": m.Hash(), "cases": results, "failed": failed + strays, "won_stages": won}
			if strays > 0 {
				doc["stray_files"] = strays
			}
			if !noConn {
				doc["connection"] = connName
			}
			if note != "" {
				doc["connection_note"] = note
			}
			if notBuilt != "" {
				doc["connection_not_built"] = notBuilt
			}
			if webhookOf != nil {
				doc["thin_trigger"] = true
			}
			writeJSON(out, doc)
		} else {
			for _, r := range results {
				switch {
				case r.Stray != "":
					fmt.Fprintf(out, "FAIL    %s\n%s\n", r.Name, indent(r.Stray))
				case r.Updated && r.Skipped != "":
					// Written as a case that starts no run: said, since a
					// deal judged by another connection's won stages than
					// meant would be kept so, and pass from then on.
					fmt.Fprintf(out, "updated %s: no run would start: %s%s\n", r.Name, r.Skipped, changeNote(r))
				case r.Updated:
					fmt.Fprintf(out, "updated %s%s\n", r.Name, changeNote(r))
				case r.OK:
					fmt.Fprintf(out, "ok      %s\n", r.Name)
				default:
					fmt.Fprintf(out, "FAIL    %s\n%s\n", r.Name, indent(r.Diff))
				}
				for _, s := range r.SkippedLines {
					fmt.Fprintf(out, "    skipped %s\n", s)
				}
			}
			judgedBy := fmt.Sprintf("the default won stages %s: no connection uses the mapping", strings.Join(won, ", "))
			if !noConn {
				judgedBy = fmt.Sprintf("won stages of connection %s: %s", connName, strings.Join(won, ", "))
			}
			if webhookOf != nil {
				judgedBy += "; each trigger judged as on a webhook of the deal, which carries little more than its id and stage"
			}
			cases := "cases"
			if len(results)-strays == 1 {
				cases = "case"
			}
			strayNote := ""
			if strays == 1 {
				strayNote = ", 1 file not part of a case"
			} else if strays > 1 {
				strayNote = fmt.Sprintf(", %d files not part of a case", strays)
			}
			fmt.Fprintf(out, "%d %s, %d failed%s (mapping %s, hash %s; %s)\n", len(results)-strays, cases, failed, strayNote, m.Name(), m.Hash(), judgedBy)
			if note != "" {
				fmt.Fprintf(out, "connection %s: %s\n", connName, note)
			}
			if notBuilt != "" {
				fmt.Fprintf(out, "note: %s\n", notBuilt)
			}
		}
		if failed > 0 || strays > 0 {
			return &exitError{code: 1}
		}
		return nil
	}

	var ev model.DealEvent
	var webhook *model.DealEvent // the fetched deal as a webhook of it says
	if f.fetch != "" {
		if ev, webhook, err = fetchEvent(ctx, cfg, f, set, buildErr, webhookOf); err != nil {
			return dealNotFetched(out, f, m, connName, err)
		}
	} else if ev, err = dealfile.Read(f.deal); err != nil {
		if webhookOf != nil {
			return usage("%s", fetchCommandFor(err.Error(), cfg.Connections[connName].Source.Type, g.configPath, f.file, m.Name(), connName))
		}
		return usage("%v", err)
	}
	if conn != nil && f.fetch == "" {
		// The account as the connection's source keys its events (a
		// Salesforce org id in another case or length is the run's
		// account).
		if key, kerr := conn.AccountKey(ev.Account); ev.Account != "" && kerr == nil {
			ev.Account = key
		}
	}
	if webhookOf != nil && f.fetch == "" && !ev.Thin {
		// A whole deal (one --fetch --save wrote) of a connection whose
		// webhooks are thin is judged as such a webhook of it, as --fetch
		// judges it.
		w := webhookOf(ev)
		webhook = &w
	}
	if c, ok := cfg.Connections[connName]; ok && !noConn && f.target == "" {
		targetName = accountTarget(c, conn, ev.Account)
	}
	var trigger mapping.Trigger = mapping.StageTrigger{WonStages: won}
	if fm, ok := m.(*mapping.File); ok {
		trigger = fm.Trigger(won)
	}
	// The intake judges a thin source's webhook, which carries little more
	// than the deal's id and stage, not the deal the run reads later: a
	// fetched deal is judged as such a webhook of it.
	judged := ev
	if webhook != nil {
		judged = *webhook
	}
	triggered, reason, terr := trigger.Evaluate(judged)
	res := testResult{Mapping: m.Name(), Hash: m.Hash(), Connection: connName, ConnectionNote: note, NotBuilt: notBuilt, Triggered: triggered, Skipped: reason, NoConnection: noConn, NoConfig: g.configPath == "", ThinTrigger: judged.Thin}
	if terr != nil {
		res.TriggerError = terr.Error()
	}
	inv, aerr := mapping.Apply(m, ev)
	res.SkippedLines = mapping.SkippedLines(m, ev)
	if aerr == nil {
		res.Invoice = &inv
		if targetName != "" {
			target, err := buildTarget(cfg, targetName)
			switch {
			case err != nil && unresolvedUnder(cfg, "targets."+targetName+"."):
				// Its secret is not at hand: the invoice is still shown.
				res.Target = targetName
				res.RequestNotPlanned = fmt.Sprintf("target %s cannot be built here, a secret of it not being at hand (%s); set it to see the request", targetName, errLine(err))
			case err != nil:
				return usage("target %s: %v", targetName, err)
			default:
				res.Target = targetName
				// A target that refuses the invoice (a Xero line with
				// neither item nor account code) fails the run: an error of
				// the invoice, like a validation error, not of the command
				// line.
				req, err := target.PlanInvoice(inv, connectors.CustomerRef{ID: PlaceholderCustomerID}, workflows.DealWorkflowID(connName, ev.Account, ev.Deal.ID)+"/invoice")
				if err != nil {
					res.Error = &errorReport{Type: targetErrorType, Message: fmt.Sprintf("target %s: %v", targetName, err)}
				} else {
					res.Request = &req
				}
			}
		}
	} else {
		res.Error = describeError(aerr)
		if _, ok := errors.AsType[*model.ValidationError](aerr); ok {
			// Mapped, then refused: the invoice shows which lines add up
			// to what (no request: a run stops before the target).
			res.Invoice = &inv
		}
	}
	if f.json {
		writeJSON(out, res)
	} else {
		printTestResult(out, res)
	}
	if res.Error != nil || terr != nil {
		return &exitError{code: 1}
	}
	return nil
}

// mappingNotLoaded ends `mapping test` when the mapping did not load, with
// err. With --json it is reported on out, as the mapping error of a deal
// is, instead of nothing there: a mapping error (exit 1: a --file that
// does not compile, a config whose only problems are in its mapping
// files) as error.type mapping, a config error (exit 2: a mapping file or
// mappings.dir that cannot be read, any other problem of the config) as
// error.type config, each with every problem; as in the other reports of
// --json, the message is in the JSON, not on stderr. Without --json it is
// err as it is.
func mappingNotLoaded(out io.Writer, f *mappingTestFlags, err error) error {
	var ee *exitError
	if !f.json || !errors.As(err, &ee) || ee.err == nil {
		return err
	}
	typ := "mapping"
	if ee.code != 1 {
		typ = "config"
	}
	rep := &loadErrorReport{Type: typ, Message: ee.err.Error()}
	var le *mapping.LoadError
	if errors.As(ee.err, &le) {
		rep.Problems = le.Problems
	} else if ps := configProblems(ee.err); ps != nil {
		rep.Problems = ps
	}
	writeJSON(out, notLoadedResult{Mapping: f.mapping, File: f.file, Error: rep})
	return &exitError{code: ee.code}
}

// usageInJSON ends `mapping test --json` on a usage error (exit 2: a deal
// file or golden folder that cannot be read, an unknown mapping,
// connection or target, flags that do not go together) with a report on
// out, as mappingNotLoaded's, error.type usage, the message in the JSON,
// not on stderr. Anything else is err as it is (the reports were
// printed).
func usageInJSON(out io.Writer, f *mappingTestFlags, err error) error {
	var ee *exitError
	if !f.json || !errors.As(err, &ee) || ee.code != 2 || ee.err == nil {
		return err
	}
	writeJSON(out, notLoadedResult{Mapping: f.mapping, File: f.file, Error: &loadErrorReport{Type: "usage", Message: ee.err.Error()}})
	return &exitError{code: 2}
}

// configProblems are the problems of the config.Error in err, in --json's
// form and sorted by key; nil when err has none.
func configProblems(err error) []configProblem {
	var ce *config.Error
	if !errors.As(err, &ce) {
		return nil
	}
	ps := make([]configProblem, len(ce.Problems))
	for i, p := range ce.Problems {
		ps[i] = configProblem{ConfigKey: p.Key, Message: p.Message}
	}
	sort.SliceStable(ps, func(i, j int) bool {
		return ps[i].ConfigKey < ps[j].ConfigKey || ps[i].ConfigKey == ps[j].ConfigKey && ps[i].Message < ps[j].Message
	})
	return ps
}

// notLoadedResult is the --json report of `mapping test` when the mapping
// did not load, or the command line or the config is wrong: the mapping
// (--mapping) or file (--file) asked for, and the error. Nothing was
// evaluated, so it has none of testResult's other fields (a "triggered":
// false would say that no run would start).
type notLoadedResult struct {
	Mapping string           `json:"mapping,omitempty"`
	File    string           `json:"file,omitempty"`
	Error   *loadErrorReport `json:"error"`
}

// loadErrorReport is the error of a mapping that did not load, with
// errorReport's type (mapping; config for a config error, usage for a
// usage error) and message, and its problems: a mapping file's
// ([]mapping.Problem, with file, line, column and YAML key, as `mapping
// lint FILE --json` gives them) or the config's ([]configProblem: a
// mapping file's problem under its config key, mappings.files[0] or
// mappings.dir, with the file, line and column in the message, a
// connection whose mapping went missing with it, any other key's
// problem); a usage error has none.
type loadErrorReport struct {
	Type     string `json:"type"`
	Message  string `json:"message"`
	Problems any    `json:"problems,omitempty"`
}

// configProblem is a config.Problem in --json.
type configProblem struct {
	ConfigKey string `json:"config_key"`
	Message   string `json:"message"`
}

// fetchFailure is a failure of --fetch that is not the command line's
// (exit 1): the CRM read, or the connection it needs, or --save. typ is
// its errorReport type.
type fetchFailure struct {
	typ string
	err error
}

func (e *fetchFailure) Error() string { return e.err.Error() }
func (e *fetchFailure) Unwrap() error { return e.err }

// Error types of fetchFailure.
const (
	fetchErrorType = "fetch" // the deal could not be read from the CRM
	saveErrorType  = "save"  // --save could not write the deal event
)

// dealNotFetched ends `mapping test --fetch` when the deal was not read
// (or not saved), with err. With --json, a failure that is not the
// command line's (exit 1: the CRM refused or did not answer, the
// connection could not be built, --save could not write) is reported on
// out, as a mapping that does not load is (mappingNotLoaded): what was
// asked for and the error, error.type fetch (or save), exit 1, the
// message in the JSON, not on stderr. Anything else (exit 2: a usage
// error) is err as it is.
func dealNotFetched(out io.Writer, f *mappingTestFlags, m mapping.Mapper, connection string, err error) error {
	var ee *exitError
	var ff *fetchFailure
	if !f.json || !errors.As(err, &ee) || ee.code != 1 || !errors.As(ee.err, &ff) {
		return err
	}
	writeJSON(out, notFetchedResult{Mapping: m.Name(), Hash: m.Hash(), Connection: connection, DealID: f.fetch, Account: f.account,
		Error: &errorReport{Type: ff.typ, Message: ff.Error()}})
	return &exitError{code: 1}
}

// notFetchedResult is the --json report of `mapping test --fetch` when the
// deal was not read: the mapping, the connection, the deal id (--fetch)
// and account (--account) asked for, and the error. Nothing was
// evaluated, so it has none of testResult's other fields (a "triggered":
// false would say that no run would start).
type notFetchedResult struct {
	Mapping    string       `json:"mapping"`
	Hash       string       `json:"hash"`
	Connection string       `json:"connection"`
	DealID     string       `json:"deal_id"`
	Account    string       `json:"account,omitempty"`
	Error      *errorReport `json:"error"`
}

// fetchEvent reads deal f.fetch through the CRM API of connection
// f.connection, as a run does after its settle time, and makes it the
// event of a closed-won delivery; with f.save it writes the event there.
// webhook is the thin event a webhook of the deal would carry, which the
// trigger judges.
func fetchEvent(ctx context.Context, cfg *config.Config, f *mappingTestFlags, set *connections.Set, buildErr error, webhookOf func(model.DealEvent) model.DealEvent) (ev model.DealEvent, webhook *model.DealEvent, err error) {
	if _, ok := cfg.Connections[f.connection]; !ok {
		return model.DealEvent{}, nil, usage("no connection %q in the config", f.connection)
	}
	if buildErr != nil || set == nil {
		return model.DealEvent{}, nil, &exitError{code: 1, err: &fetchFailure{typ: fetchErrorType, err: cmp.Or(buildErr, errors.New("the connections were not built"))}}
	}
	conn, _ := set.Get(f.connection)
	if conn.Fetcher == nil {
		return model.DealEvent{}, nil, usage("connection %q: its %s source carries whole deals in its webhooks and has no CRM API to read from; use --deal", f.connection, conn.SourceType)
	}
	account := f.account
	if al, ok := conn.Source.(connectors.AccountLister); ok && account == "" {
		accounts := al.Accounts()
		sort.Strings(accounts)
		if len(accounts) != 1 {
			return model.DealEvent{}, nil, usage("connection %q serves the accounts %s: say which with --account", f.connection, strings.Join(accounts, ", "))
		}
		account = accounts[0]
	}
	// The account as the source keys its events (and account_targets
	// choose by): a Salesforce org id typed in 15 characters or another
	// case is the run's account too.
	if account != "" {
		if account, err = conn.AccountKey(account); err != nil {
			return model.DealEvent{}, nil, usage("%v", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	deal, err := conn.Fetcher.FetchDeal(ctx, account, f.fetch)
	if err != nil {
		return model.DealEvent{}, nil, &exitError{code: 1, err: &fetchFailure{typ: fetchErrorType, err: fmt.Errorf("reading deal %s from the CRM of connection %s: %w", f.fetch, f.connection, err)}}
	}
	ev = model.DealEvent{EventID: "fetched-" + f.fetch, OccurredAt: time.Now().UTC().Truncate(time.Second), Account: account, Deal: deal}
	if f.save != "" {
		b, err := json.MarshalIndent(ev, "", "  ")
		if err == nil {
			err = os.WriteFile(f.save, append(b, '\n'), 0o644)
		}
		if err != nil {
			return model.DealEvent{}, nil, &exitError{code: 1, err: &fetchFailure{typ: saveErrorType, err: fmt.Errorf("--save: %w", err)}}
		}
	}
	if webhookOf == nil {
		return ev, nil, nil
	}
	w := webhookOf(ev)
	return ev, &w, nil
}

type testResult struct {
	Mapping    string `json:"mapping"`
	Hash       string `json:"hash"`
	Connection string `json:"connection"`
	// ConnectionNote says that Connection was picked among several using
	// the mapping, and how to pick another (pickedNote).
	ConnectionNote string `json:"connection_note,omitempty"`
	// NotBuilt says that the connection could not be built, a secret of
	// the config not resolving here (config.WithoutSecrets), and what the
	// test did without it.
	NotBuilt string `json:"connection_not_built,omitempty"`
	// NoConnection: no connection of the config uses the mapping; it was
	// evaluated as one named Connection with the default won stages.
	NoConnection bool `json:"no_connection,omitempty"`
	// NoConfig: no --config was given, so the connections are dev's
	// built-in ones (the text says so).
	NoConfig  bool `json:"-"`
	Triggered bool `json:"triggered"`
	// ThinTrigger: the trigger was judged on a thin webhook of the deal
	// (its id, stage and raw fields), as the intake judges a thin source's.
	ThinTrigger bool   `json:"thin_trigger,omitempty"`
	Skipped     string `json:"skipped,omitempty"`
	// SkippedLines are the line items lines.skip left out of the invoice.
	SkippedLines []mapping.SkippedLine `json:"skipped_lines,omitempty"`
	TriggerError string                `json:"trigger_error,omitempty"`
	Invoice      *model.Invoice        `json:"invoice,omitempty"`
	Target       string                `json:"target,omitempty"`
	Request      *connectors.Request   `json:"request,omitempty"`
	// RequestNotPlanned says why there is no Request for Target: it could
	// not be built, a secret of it not resolving here.
	RequestNotPlanned string       `json:"request_not_planned,omitempty"`
	Error             *errorReport `json:"error,omitempty"`
}

// unresolvedUnder reports whether a secret under the key prefix (e.g.
// "targets.xero.") did not resolve when cfg was loaded.
func unresolvedUnder(cfg *config.Config, prefix string) bool {
	for _, p := range cfg.UnresolvedSecrets() {
		if strings.HasPrefix(p.Key, prefix) {
			return true
		}
	}
	return false
}

// errLine is err's message on one line, the errors errors.Join puts one
// per line apart by "; ".
func errLine(err error) string {
	return oneLine(strings.ReplaceAll(err.Error(), "\n", "; "))
}

// targetErrorType is the errorReport type of an invoice the target
// refuses to plan.
const targetErrorType = "target"

type errorReport struct {
	Type    string             `json:"type"` // mapping | validation | target | fetch | save
	Message string             `json:"message"`
	Mapping *mapping.Error     `json:"mapping,omitempty"`
	Fields  []model.FieldError `json:"problems,omitempty"`
}

func describeError(err error) *errorReport {
	var me *mapping.Error
	if errors.As(err, &me) {
		return &errorReport{Type: "mapping", Message: err.Error(), Mapping: me}
	}
	var ve *model.ValidationError
	if errors.As(err, &ve) {
		return &errorReport{Type: "validation", Message: err.Error(), Fields: ve.Problems}
	}
	return &errorReport{Type: "other", Message: err.Error()}
}

// unusedMappingConnection names the connection a mapping that no connection
// uses is tested as.
const unusedMappingConnection = "test"

// pickConnection chooses the connection (for won stages, target and the
// idempotency key), "" when none of the config's uses the mapping, and the
// target.
func pickConnection(cfg *config.Config, f *mappingTestFlags, mappingName string) (conn string, won []string, target string, err error) {
	conn, won, target = f.connection, config.DefaultWonStages, f.target
	if conn == "" {
		if own, builtIn := connectionsUsing(cfg, mappingName); len(own)+len(builtIn) > 0 {
			names := append(own, builtIn...)
			conn = names[0]
		}
	}
	if conn != "" {
		c, ok := cfg.Connections[conn]
		if !ok {
			return "", nil, "", usage("no connection %q in the config", conn)
		}
		won = c.Trigger.WonStages
		if target == "" {
			target = c.Target
		}
	}
	if target == "" {
		// No connection uses the mapping: the config's only target of its
		// own, else the sandbox (the built-in one, or the file's).
		var own []string
		for n := range cfg.Targets {
			if !cfg.IsDevDefault("targets", n) {
				own = append(own, n)
			}
		}
		if _, ok := cfg.Targets["sandbox"]; len(own) != 1 && ok {
			target = "sandbox"
		} else if len(own) == 1 {
			target = own[0]
		}
	}
	if target != "" {
		if _, ok := cfg.Targets[target]; !ok {
			return "", nil, "", usage("no target %q in the config%s", target, targetNamesHint(cfg, target))
		}
	}
	return conn, won, target, nil
}

// targetNamesHint is what `no target X` adds: the name X is a typo of,
// and the config's targets (the built-in sandbox among them).
func targetNamesHint(cfg *config.Config, name string) string {
	names := slices.Sorted(maps.Keys(cfg.Targets))
	if len(names) == 0 {
		return " (it has no targets)"
	}
	hint := " (its targets: " + wording.SomeOf(names, 10) + ")"
	if best, ok := wording.TypoOf(name, names); ok {
		hint = fmt.Sprintf(" (did you mean %s? its targets: %s)", best, wording.SomeOf(names, 10))
	}
	return hint
}

// connectionsUsing lists the connections whose mapping is mappingName:
// the config's own by name, and the built-in `demo` one (added for
// dealsync dev), which `mapping test` takes only when none of its own
// does.
func connectionsUsing(cfg *config.Config, mappingName string) (own, builtIn []string) {
	for n, c := range cfg.Connections {
		if c.Mapping == mappingName || (mappingName == mapping.DefaultName && c.Mapping == "") {
			if cfg.IsDevDefault("connections", n) {
				builtIn = append(builtIn, n)
			} else {
				own = append(own, n)
			}
		}
	}
	sort.Strings(own)
	sort.Strings(builtIn)
	return own, builtIn
}

// pickedNote says, when `mapping test` picked connection conn without
// --connection among several using the mapping, which it took and how to
// take another: their won stages, account keys and targets differ, and a
// deal judged against the wrong one starts no run. "" otherwise.
func pickedNote(cfg *config.Config, f *mappingTestFlags, mappingName, conn string) string {
	if f.connection != "" || conn == "" {
		return ""
	}
	// The config's own: the built-in `demo` one (dev's) is taken only
	// when none of them uses the mapping, and is no choice then.
	names, _ := connectionsUsing(cfg, mappingName)
	if len(names) < 2 {
		return ""
	}
	return fmt.Sprintf("the first of the %d connections using mapping %s (%s): --connection NAME picks another", len(names), mappingName, strings.Join(names, ", "))
}

// accountTarget is the name of the target that the runs of connection c
// send the invoices of a CRM account to: its account_targets entry, else
// its target. It asks activities.Connection.TargetFor, which the runs'
// steps call, with stand-ins that carry the targets' names, so that
// mapping test and the runs cannot choose differently.
func accountTarget(c config.Connection, conn *connections.Connection, account string) string {
	choice := activities.Connection{Target: namedTarget{name: c.Target}, AccountTargets: map[string]activities.NamedTarget{}}
	for a, name := range c.AccountTargets {
		// Keyed as the built connection keys them (connections.Build).
		if conn != nil {
			if key, err := conn.AccountKey(a); err == nil {
				a = key
			}
		}
		choice.AccountTargets[a] = activities.NamedTarget{Name: name, Target: namedTarget{name: name}}
	}
	t, _ := choice.TargetFor(account).(namedTarget)
	return t.name
}

// namedTarget stands for a configured target in accountTarget, which reads
// only its name: its Target methods are never called.
type namedTarget struct {
	connectors.Target
	name string
}

// newGoldenCaseHint is what to do when RunGolden stopped at a case of dir
// that has no expected file yet (a new case): have --update write it.
// "" with update, or when err is about another case.
func newGoldenCaseHint(dir string, update bool, err error) string {
	if update {
		return ""
	}
	deals, _ := filepath.Glob(filepath.Join(dir, "*.deal.json"))
	var failed string // the case err is about, when it is a new one
	var fresh []string
	for _, d := range deals {
		name := strings.TrimSuffix(filepath.Base(d), ".deal.json")
		_, ierr := os.Stat(filepath.Join(dir, name+".invoice.json"))
		_, eerr := os.Stat(filepath.Join(dir, name+".error.txt"))
		if ierr == nil || eerr == nil {
			continue
		}
		fresh = append(fresh, name)
		if strings.Contains(err.Error(), "golden case "+name+":") {
			failed = name
		}
	}
	if failed == "" {
		return ""
	}
	hint := fmt.Sprintf("; for a new case, run again with --update: it writes %s.invoice.json (or %s.error.txt, when the mapping fails) from the current output, to review before you keep it", failed, failed)
	if len(fresh) > 1 {
		// The run stops at the first: name every case it would stop at.
		hint += fmt.Sprintf(" (the %d cases without either file: %s)", len(fresh), wording.SomeOf(fresh, 10))
	}
	return hint
}

// buildTarget builds the configured target name, to plan requests with
// (PlanInvoice sends nothing).
func buildTarget(cfg *config.Config, name string) (connectors.Target, error) {
	tc := cfg.Targets[name]
	spec, ok := connectors.LookupTarget(tc.Type)
	if !ok {
		return nil, fmt.Errorf("unknown target type %q", tc.Type)
	}
	return spec.Build(tc.Spec, connectors.Env{
		HTTPClient: &http.Client{Timeout: time.Second},
		Logger:     quietLogger(),
		ConfigKey:  "targets." + name,
		KeyVar:     cfg.KeyVar,
	})
}

func printTestResult(out io.Writer, r testResult) {
	fmt.Fprintf(out, "mapping:    %s (hash %s)\n", r.Mapping, r.Hash)
	if r.NoConnection {
		none := "none of the config's connections uses this mapping"
		if r.NoConfig {
			none = "none of dev's built-in connections uses this mapping (no --config given)"
		}
		fmt.Fprintf(out, "connection: %s: evaluated as one named %q with the default won stages (the idempotency key below is that name's; --connection NAME picks one)\n", none, r.Connection)
	} else if r.ConnectionNote != "" {
		fmt.Fprintf(out, "connection: %s (%s)\n", r.Connection, r.ConnectionNote)
	} else {
		fmt.Fprintf(out, "connection: %s\n", r.Connection)
	}
	if r.NotBuilt != "" {
		fmt.Fprintf(out, "note:       %s\n", r.NotBuilt)
	}
	if r.ThinTrigger {
		fmt.Fprintf(out, "trigger:    judged as on a webhook of this deal, which carries little more than its id and stage (deal.amount, deal.company, the line items are empty there)\n")
	}
	switch {
	case r.TriggerError != "":
		fmt.Fprintf(out, "trigger:    FAILED on this deal (the intake refuses such a delivery with 500 until the mapping is fixed): %s\n", r.TriggerError)
	case r.Triggered:
		fmt.Fprintf(out, "trigger:    a run would start\n")
	default:
		fmt.Fprintf(out, "trigger:    no run would start: %s\n", r.Skipped)
	}
	for _, s := range r.SkippedLines {
		// Left out of the invoice: its lines do not say so, nor does an
		// amount check that they fall short.
		fmt.Fprintf(out, "skipped:    %s\n", s)
	}
	if r.Error != nil && r.Error.Type != targetErrorType {
		fmt.Fprintf(out, "\n%s error:\n", r.Error.Type)
		switch {
		case r.Error.Mapping != nil:
			me := r.Error.Mapping
			fmt.Fprintf(out, "  mapping:    %s\n  field:      %s\n", me.Mapping, me.Field)
			if me.Expression != "" {
				fmt.Fprintf(out, "  expression: %s\n", me.Expression)
			}
			if me.Value != "" {
				fmt.Fprintf(out, "  value:      %q\n", me.Value)
			}
			fmt.Fprintf(out, "  message:    %s\n", me.Message)
		case len(r.Error.Fields) > 0:
			for _, p := range r.Error.Fields {
				fmt.Fprintf(out, "  %s\n", p.Error())
			}
		default:
			fmt.Fprintf(out, "  %s\n", r.Error.Message)
		}
		if r.Invoice != nil {
			b, _ := indentJSON(r.Invoice, "  ")
			fmt.Fprintf(out, "\ninvoice as mapped (refused above; a run stops here):\n  %s\n", b)
		}
		return
	}
	// A deal no run would start for is mapped all the same (the
	// mapping is under test), but nothing below would be sent for it.
	unsent := ""
	notStarted := !r.Triggered && r.TriggerError == "" // a failed trigger is said above
	if notStarted {
		unsent = " (as mapped; no run would start for this deal, see trigger above)"
	}
	fmt.Fprintf(out, "\ninvoice%s:\n", unsent)
	b, _ := indentJSON(r.Invoice, "  ")
	fmt.Fprintf(out, "  %s\n", b)
	if r.Error != nil {
		fmt.Fprintf(out, "\n%s error (the target refuses this invoice: a run would fail creating it):\n  %s\n", r.Error.Type, r.Error.Message)
		return
	}
	if r.RequestNotPlanned != "" {
		fmt.Fprintf(out, "\n(no request to show: %s)\n", r.RequestNotPlanned)
		return
	}
	if r.Request == nil {
		fmt.Fprintf(out, "\n(no target: no request to show)\n")
		return
	}
	if notStarted {
		fmt.Fprintf(out, "\nrequest to target %s (NOT sent, and no run would send it for this deal; customer id is found or created at run time):\n", r.Target)
	} else {
		fmt.Fprintf(out, "\nrequest to target %s (NOT sent; customer id is found or created at run time):\n", r.Target)
	}
	fmt.Fprintf(out, "  %s %s\n", r.Request.Method, r.Request.URL)
	keys := make([]string, 0, len(r.Request.Header))
	for k := range r.Request.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range r.Request.Header[k] {
			fmt.Fprintf(out, "  %s: %s\n", k, v)
		}
	}
	if r.Request.Note != "" {
		fmt.Fprintf(out, "  (note: %s)\n", r.Request.Note)
	}
	var body bytes.Buffer
	if json.Indent(&body, r.Request.Body, "  ", "  ") == nil {
		fmt.Fprintf(out, "\n  %s\n", unescapeHTML(body.Bytes()))
	} else if len(r.Request.Body) > 0 {
		fmt.Fprintf(out, "\n  %s\n", r.Request.Body)
	}
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return "    " + strings.Join(lines, "\n    ")
}

// changeNote is what `mapping test --update` adds after a case it
// rewrote: nothing for a new or rewritten file, the change otherwise,
// and the case's other file when it deleted it (a case keeps one
// outcome): "unchanged" alone hid a stale invoice deleted beside an
// error.txt that held the error already. (A case that was an invoice
// and is now an error, or the other way round, says so already.)
func changeNote(r mapping.GoldenResult) string {
	if r.Deleted != "" {
		switch r.Change {
		case "unchanged":
			return fmt.Sprintf(" (%s unchanged; deleted %s, which the case no longer gives)", r.Wrote, r.Deleted)
		case "", "new", "changed":
			return fmt.Sprintf(" (wrote %s; deleted %s, which the case no longer gives)", r.Wrote, r.Deleted)
		}
	}
	switch r.Change {
	case "", "new", "changed":
		return ""
	case "unchanged":
		return " (unchanged)"
	}
	return " (" + r.Change + ")"
}

func newMappingLintCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "lint [FILE...]",
		Short: "Compile and type-check every mapping of the config (or the given files)",
		Long: `lint compiles and type-checks the mapping files given, or with --config
every mapping file of the config (mappings.files and mappings.dir), and
prints every problem with file:line:col. With --config it loads and checks
the whole config first, but not its secrets (env:, file:), which a CI job
seldom has: dealsync config check resolves them. Files and --config: the
config is checked, and the files; a file that defines a mapping name a
config's file defines (an edited copy of it) stands in for that file, in
a note ("notes" with --json), and "ok" lists the config's mappings too.
A mapping that loads but may not say what it means (a time_zone such as
Etc/GMT+1 or EST, a tax rate of 0.19 for 19 %) is a "warning:" line
("warnings" with --json); the exit status stays 0.

Exit status: 0 every mapping is clean; 1 a mapping has problems (it does
not compile, or defines a name another file does; with --config, a
connection's mapping missing because its file did not load), listed; 2 a
usage or config error: nothing to check (no files given and no --config,
or a config without mapping files), a file or mappings.dir that cannot be
read, or a config problem outside the mapping files. With --json each of
them prints one JSON document, the error in it, not on stderr:
{"ok": true, "mappings": [...]}, or {"ok": false, "error": ...,
"problems": [...]}.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			names, notes, warnings, err := lintMappings(out, g, args, asJSON)
			if err == nil {
				// "ok" over nothing would pass a CI job that checks
				// nothing.
				switch {
				case len(names) > 0:
				case g.configPath == "":
					err = usage("nothing to check: give mapping files (mapping lint FILE...) or a --config whose mappings.files or mappings.dir has some")
				default:
					err = usage("nothing to check: %s has no mapping files (mappings.files, mappings.dir)", g.configPath)
				}
			}
			var ee *exitError
			switch {
			case err == nil:
			case asJSON && errors.As(err, &ee) && ee.err != nil:
				// Every outcome is a JSON document, the error's message
				// in it, not on stderr.
				doc := map[string]any{"ok": false, "error": ee.err.Error()}
				if ps := configProblems(ee.err); ps != nil {
					doc["problems"] = ps
				}
				writeJSON(out, doc)
				return &exitError{code: ee.code}
			default:
				return err
			}
			if asJSON {
				doc := map[string]any{"ok": true, "mappings": names}
				if len(notes) > 0 {
					doc["notes"] = notes
				}
				if len(warnings) > 0 {
					doc["warnings"] = warnings
				}
				writeJSON(out, doc)
			} else {
				for _, n := range notes {
					fmt.Fprintln(out, "note: "+n)
				}
				for _, w := range warnings {
					fmt.Fprintln(out, "warning: "+w.String())
				}
				fmt.Fprintf(out, "ok: %d mapping(s): %s\n", len(names), strings.Join(names, ", "))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "machine-readable output")
	return cmd
}

// lintMappings compiles the mapping files given (files), or with none
// those of the config, and gives their mappings' names (with files and
// --config, the config's too) and the notes to print before "ok" (a file
// that stands in for a config's file of its mapping name) and the
// warnings of the mappings checked (mapping.File.Warnings). The problems of
// files given are printed on out (with asJSON, as {"ok": false, "error",
// "problems"}), and the error returned says only the exit status: 1, or 2
// when a file cannot be read (not there, a directory), a usage error, not
// a finding. Any other error (the config's, exit 1 or 2) is for the
// caller to print.
func lintMappings(out io.Writer, g *globalFlags, files []string, asJSON bool) ([]string, []string, []mapping.Problem, error) {
	if len(files) == 0 {
		cfg, err := loadForMappings(g, false)
		if err != nil {
			return nil, nil, nil, err
		}
		return cfg.Mappings.Loaded.Names(), nil, mappingWarnings(cfg.Mappings.Loaded, nil), nil
	}
	var cfg *config.Config
	if g.configPath != "" {
		// Files and --config: the config is checked as with --config
		// alone (--config was ignored), and the files as without it; a
		// file that defines a mapping name one of the config's files
		// defines stands in for that file (an edited copy of it, checked
		// before it replaces it), said in a note, not a clash: the
		// config's file is checked already.
		var err error
		if cfg, err = loadForMappings(g, false); err != nil {
			return nil, nil, nil, err
		}
	}
	set, err := mapping.Load(mapping.Sources{Files: files})
	var le *mapping.LoadError
	switch {
	case err == nil:
		if cfg == nil {
			return set.Names(), nil, mappingWarnings(set, nil), nil
		}
		names := set.Names()
		var notes []string
		for _, name := range cfg.Mappings.Loaded.Names() {
			own, _ := cfg.Mappings.Loaded.Get(name)
			given, ok := set.Get(name)
			switch {
			case !ok:
				names = append(names, name)
			case !sameFile(given.Path(), own.Path()):
				notes = append(notes, fmt.Sprintf("%s: mapping %q stands in for the config's %s (checked in its place; the config keeps its own until that file is replaced)", given.Path(), name, own.Path()))
			}
		}
		slices.Sort(names)
		return names, notes, mappingWarnings(set, cfg.Mappings.Loaded), nil
	case !errors.As(err, &le):
		return nil, nil, nil, usage("%v", err)
	case asJSON:
		writeJSON(out, map[string]any{"ok": false, "error": le.Error(), "problems": le.Problems})
	default:
		for _, p := range le.Problems {
			fmt.Fprintln(out, p.String())
		}
	}
	if slices.ContainsFunc(le.Problems, func(p mapping.Problem) bool { return p.Unread }) {
		return nil, nil, nil, &exitError{code: 2}
	}
	return nil, nil, nil, &exitError{code: 1}
}

// mappingWarnings are the warnings of set's mappings and of those of
// also (a config's) that set has no mapping of the name of, by mapping
// name.
func mappingWarnings(set, also *mapping.Set) []mapping.Problem {
	var out []mapping.Problem
	names := slices.Concat(set.Names(), also.Names())
	slices.Sort(names)
	for _, name := range slices.Compact(names) {
		f, ok := set.Get(name)
		if !ok {
			f, ok = also.Get(name)
		}
		if ok {
			out = append(out, f.Warnings()...)
		}
	}
	return out
}

// sameFile reports whether paths a and b name one file.
func sameFile(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(sa, sb)
	}
	absA, errA := filepath.Abs(a)
	absB, errB := filepath.Abs(b)
	return errA == nil && errB == nil && absA == absB
}

// fetchCommandFor fills in the mapping test command that msg, the error of
// a deal file that is a CRM's own webhook body, gives with a placeholder
// (--connection NAME): the config, the mapping (the file mappingFile
// when the test read it with --file, else the config's mappingName) and
// the connection the test runs with, when that connection's source, of
// type sourceType, is the CRM the body is of. Otherwise msg is returned
// as it is.
func fetchCommandFor(msg, sourceType, configPath, mappingFile, mappingName, connName string) string {
	const placeholder = "dealsync mapping test --connection NAME "
	if !strings.Contains(msg, placeholder) || !strings.Contains(strings.ToLower(msg), ": a "+sourceType+" ") {
		return msg
	}
	cmd := "dealsync mapping test "
	if configPath != "" {
		cmd += "--config " + shellWord(configPath) + " "
	}
	if mappingFile != "" {
		// --mapping would test the config's mapping of that name, not
		// the file being worked on.
		cmd += "--file " + shellWord(mappingFile)
	} else {
		cmd += "--mapping " + shellWord(mappingName)
	}
	cmd += " --connection " + shellWord(connName) + " "
	return strings.Replace(msg, placeholder, cmd, 1)
}

// shellWord quotes s for a POSIX shell when it needs it.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-:@+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
