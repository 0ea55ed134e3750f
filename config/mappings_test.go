package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connectors"
)

func TestMappingsSection(t *testing.T) {
	path := writeFile(t, `
mappings:
  files: [maps/std.yaml]
targets:
  erp: {type: test-target, base_url: "https://erp.example.com"}
connections:
  shop:
    source: {type: test-source, secret: s}
    target: erp
    mapping: std
  plain:
    source: {type: test-source, secret: s}
    target: erp
`)
	dir := filepath.Dir(path)
	os.MkdirAll(filepath.Join(dir, "maps"), 0o755)
	// Relative to the config file, not to the working directory.
	os.WriteFile(filepath.Join(dir, "maps", "std.yaml"), []byte("name: std\ndefaults: {currency: EUR}\n"), 0o644)
	cfg := mustLoad(t, path)
	equal(t, "mappings.sources", cfg.Mappings.Sources.Files, []string{filepath.Join(dir, "maps", "std.yaml")})
	equal(t, "loaded mappings", cfg.Mappings.Loaded.Names(), []string{"std"})
	equal(t, "reload_interval default", cfg.Mappings.ReloadInterval.String(), "2s")

	// A broken mapping file is reported at the key naming it, with the
	// file's position; an unknown mapping name at the connection's key.
	os.WriteFile(filepath.Join(dir, "maps", "std.yaml"), []byte("name: std\ninvoice:\n  memo: deal.titel\n"), 0o644)
	_, err := config.Load(path)
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("got %v, want *config.Error", err)
	}
	want := map[string]string{
		"mappings.files[0]":        filepath.Join(dir, "maps", "std.yaml") + ":3:14: invoice.memo: type deal has no field titel",
		"connections.shop.mapping": `mapping "std" is not defined (defined: default); some mapping files did not load`,
	}
	for _, p := range cerr.Problems {
		frag, ok := want[p.Key]
		if !ok {
			t.Errorf("unexpected problem %s", p)
			continue
		}
		if !strings.Contains(p.Message, frag) {
			t.Errorf("%s: %q does not contain %q", p.Key, p.Message, frag)
		}
		delete(want, p.Key)
	}
	for k := range want {
		t.Errorf("no problem at %s:\n%v", k, err)
	}

	// Unknown name without any mapping files.
	path = writeFile(t, `
targets:
  erp: {type: test-target, base_url: "https://erp.example.com"}
connections:
  shop:
    source: {type: test-source, secret: s}
    target: erp
    mapping: standard
`)
	_, err = config.Load(path)
	if !errors.As(err, &cerr) || !cerr.Has("connections.shop.mapping") || len(cerr.Problems) != 1 {
		t.Fatalf("got %v, want one problem at connections.shop.mapping", err)
	}
	if !strings.Contains(err.Error(), `mapping "standard" is not defined (defined: default)`) {
		t.Errorf("message: %v", err)
	}

	// A missing directory.
	path = writeFile(t, "mappings: {dir: nowhere}\n")
	if _, err = config.Load(path); !errors.As(err, &cerr) || !cerr.Has("mappings.dir") {
		t.Fatalf("got %v, want a problem at mappings.dir", err)
	}
}

// A relative mappings.dir, or mapping file, that does not exist says
// which directory it was read from: the config file's, not the working
// directory (where it may well be), unless the two are one; without a
// config file, the working directory. An absolute one says nothing more.
func TestMissingRelativeMappingPathsSayWhereTheyWereRead(t *testing.T) {
	wd := t.TempDir()
	t.Chdir(wd)
	os.MkdirAll(filepath.Join(wd, "maps"), 0o755)
	os.WriteFile(filepath.Join(wd, "maps", "std.yaml"), []byte("name: std\n"), 0o644)
	path := writeFile(t, "mappings: {dir: maps, files: [maps/std.yaml]}\n")
	dir := filepath.Dir(path)
	_, err := config.Load(path)
	for _, want := range []string{
		"\n  mappings.dir: must name an existing directory: the relative path maps is read from the config file's directory, " + dir +
			", not from the working directory, and " + filepath.Join(dir, "maps") + " does not exist: give a path relative to " + dir + ", or an absolute one",
		"\n  mappings.files[0]: " + filepath.Join(dir, "maps", "std.yaml") + ": cannot read: no such file or directory: the relative path maps/std.yaml is read from the config file's directory, " + dir +
			", not from the working directory: give a path relative to " + dir + ", or an absolute one",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load = %v\nwant %q", err, want)
		}
	}
	// Run in the config file's directory, the working directory is not
	// set against it.
	t.Chdir(dir)
	_, err = config.Load(path)
	want := "\n  mappings.dir: must name an existing directory: the relative path maps is read from the config file's directory, " + dir +
		", and " + filepath.Join(dir, "maps") + " does not exist: give a path relative to " + dir + ", or an absolute one"
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "working directory") {
		t.Errorf("in the config file's directory: Load = %v\nwant %q, and no word of the working directory", err, want)
	}
	t.Chdir(wd)
	// No file: the environment's relative directory is the working
	// directory's.
	t.Setenv("DEALSYNC_MAPPINGS_DIR", "nowhere")
	_, err = config.Load("")
	if want := "mappings.dir: must name an existing directory: the relative path nowhere is read from the working directory, " + wd +
		", as there is no config file: give an absolute path (set by DEALSYNC_MAPPINGS_DIR)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Load = %v\nwant %q", err, want)
	}
	t.Setenv("DEALSYNC_MAPPINGS_DIR", filepath.Join(wd, "nowhere"))
	if _, err = config.Load(""); err == nil || !strings.HasSuffix(err.Error(), "mappings.dir: must name an existing directory (set by DEALSYNC_MAPPINGS_DIR)") {
		t.Errorf("an absolute path: %v", err)
	}
}

// perAccountSource stands in for a source whose CRM numbers deals and
// companies per account (Pipedrive).
type perAccountSource struct {
	Accounts map[string]string `mapstructure:"accounts"`
}

func (s perAccountSource) AccountsWithOwnIDs() []string {
	var out []string
	for a := range s.Accounts {
		out = append(out, a)
	}
	return out
}

// CRMAccounts: as Pipedrive, whose events name their company.
func (s perAccountSource) CRMAccounts() (string, map[string]string) {
	keys := map[string]string{}
	for a := range s.Accounts {
		keys[a] = a
	}
	return "test company", keys
}

// orgSource stands in for a source whose events name their account and
// whose deal ids do not repeat across accounts (HubSpot, Salesforce), an
// account being written in more than one way: its first 5 characters are
// the account (as a Salesforce org's 15 of 18).
type orgSource struct {
	Accounts map[string]string `mapstructure:"accounts"`
}

func (s orgSource) CRMAccounts() (string, map[string]string) {
	keys := map[string]string{}
	for a := range s.Accounts {
		keys[a] = a[:min(5, len(a))]
	}
	return "test org", keys
}

func init() {
	connectors.RegisterSource(connectors.SourceSpec{
		Name:      "test-per-account",
		NewConfig: func() any { return &perAccountSource{} },
	})
	connectors.RegisterSource(connectors.SourceSpec{
		Name:      "test-org",
		NewConfig: func() any { return &orgSource{} },
	})
}

// Two accounts of a source that numbers deals per account, invoicing into
// one target with the built-in mapping, would take each other's invoices
// and customers for their own: the config is refused at the connection's
// account_targets, naming the accounts and the target. Each account on
// its own target, or a named mapping, is accepted.
func TestAccountsSharingIDsInOneTarget(t *testing.T) {
	load := func(extra string) error {
		path := writeFile(t, `
mappings:
  files: [std.yaml, keyed.yaml]
targets:
  erp: {type: test-target, base_url: "https://erp.example.com"}
  erp2: {type: test-target, base_url: "https://erp2.example.com"}
  erp3: {type: test-target, base_url: "https://erp3.example.com"}
connections:
  pd:
    source:
      type: test-per-account
      accounts: {"111": a, "222": b, "333": c}
    target: erp
`+extra)
		// std keys only the invoice by account: customers still collide.
		os.WriteFile(filepath.Join(filepath.Dir(path), "std.yaml"), []byte("name: std\ninvoice:\n  reference: event.account + \"-\" + deal.id\n"), 0o644)
		os.WriteFile(filepath.Join(filepath.Dir(path), "keyed.yaml"), []byte("name: keyed\ninvoice:\n  reference: event.account + \"-\" + deal.id\n"+
			"  customer:\n    external_id: event.account + \"-\" + deal.company.id\n"), 0o644)
		_, err := config.Load(path)
		return err
	}
	for extra, want := range map[string]string{
		"":                                       `accounts 111, 222, 333 of this test-per-account source invoice into target "erp"`,
		"    account_targets: {\"333\": erp2}\n": `accounts 111, 222 of this test-per-account source invoice into target "erp"`,
		"    account_targets: {\"111\": erp2, \"222\": erp2}\n": `accounts 111, 222 of this test-per-account source invoice into target "erp2"`,
		"    mapping: std\n": `into target "erp" with mapping "std", whose invoice.reference and invoice.customer.external_id do not both read event.account`,
	} {
		var cerr *config.Error
		if err := load(extra); !errors.As(err, &cerr) || len(cerr.Problems) != 1 {
			t.Errorf("%q: got %v, want one problem", extra, err)
			continue
		}
		p := cerr.Problems[0]
		if p.Key != "connections.pd.account_targets" || !strings.Contains(p.Message, want) || !strings.Contains(p.Message, "event.account") {
			t.Errorf("%q: problem %s; want %s", extra, p, want)
		}
	}
	for _, extra := range []string{
		"    account_targets: {\"222\": erp2, \"333\": erp3}\n",
		"    mapping: keyed\n",
	} {
		if err := load(extra); err != nil {
			t.Errorf("%q: %v", extra, err)
		}
	}
}

// Two connections of such a source whose accounts differ, invoicing into
// one target, collide the same way; the same account twice does not, nor
// do a target each or a mapping that keys by account.
func TestConnectionsSharingIDsInOneTarget(t *testing.T) {
	load := func(accountB, targetB, mappingB string, extraA ...string) error {
		path := writeFile(t, `
mappings:
  files: [keyed.yaml]
targets:
  erp: {type: test-target, base_url: "https://erp.example.com"}
  erp2: {type: test-target, base_url: "https://erp2.example.com"}
connections:
  pd-a:
    source:
      type: test-per-account
      accounts: {"111": a}
    target: erp
`+strings.Join(extraA, "")+`  pd-b:
    source:
      type: test-per-account
      accounts: {"`+accountB+`": b}
    target: `+targetB+`
    mapping: "`+mappingB+`"
`)
		if err := os.WriteFile(filepath.Join(filepath.Dir(path), "keyed.yaml"), []byte("name: keyed\ninvoice:\n  reference: event.account + \"-\" + deal.id\n"+
			"  customer:\n    external_id: event.account + \"-\" + deal.company.id\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := config.Load(path)
		return err
	}
	var cerr *config.Error
	if err := load("222", "erp", ""); !errors.As(err, &cerr) || len(cerr.Problems) != 1 {
		t.Fatalf("two companies in one target: %v, want one problem", err)
	}
	p := cerr.Problems[0]
	if p.Key != "connections.pd-a.target" || !strings.Contains(p.Message, `connections pd-a (account 111, the built-in mapping); pd-b (account 222, the built-in mapping) invoice into target "erp"`) {
		t.Errorf("problem %s", p)
	}
	// Reported where the first connection routes its account there.
	if err := load("222", "erp2", "", "    account_targets: {\"111\": erp2}\n"); !errors.As(err, &cerr) || len(cerr.Problems) != 1 ||
		cerr.Problems[0].Key != "connections.pd-a.account_targets.111" {
		t.Errorf("routed by account_targets: %v", err)
	}
	for _, c := range [][3]string{
		{"111", "erp2", ""},     // one company, a target each
		{"222", "erp2", ""},     // a target each
		{"222", "erp", "keyed"}, // keys of its own
	} {
		if err := load(c[0], c[1], c[2]); err != nil {
			t.Errorf("%v: %v", c, err)
		}
	}
	// One company on two connections into one target: loaded, with a
	// warning (SharedAccountWarnings), whatever the mapping.
	for _, m := range []string{"", "keyed"} {
		if err := load("111", "erp", m); err != nil {
			t.Errorf("mapping %q: one company on two connections into one target: %v, want it loaded", m, err)
		}
	}
}

// One account listed by two connections that invoice it into one target
// is invoiced twice for a deal whose webhooks reach both and that both
// trigger on (each connection starts runs of its own). Such a config
// loads (connections of one account with disjoint triggers, a pipeline
// each, were valid and are), with a warning at the second connection's
// target (or account_targets entry) naming both and the account, however
// each writes it. A target each, and different accounts of a source whose
// ids do not repeat across accounts, give none.
func TestConnectionsSharingAnAccountInOneTarget(t *testing.T) {
	load := func(b string) []string {
		t.Helper()
		path := writeFile(t, `
targets:
  erp: {type: test-target, base_url: "https://erp.example.com"}
  erp2: {type: test-target, base_url: "https://erp2.example.com"}
connections:
  hs:
    source:
      type: test-org
      accounts: {"62515": a, "77777": b}
    target: erp
  hs2:
    source:
      type: test-org
`+b)
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatalf("%q: %v, want it loaded", b, err)
		}
		return cfg.SharedAccountWarnings()
	}
	for b, want := range map[string]string{
		"      accounts: {\"62515\": a}\n    target: erp\n": `connections.hs2.target: connections hs and hs2 both list test org 62515 and invoice it into target "erp"; ` +
			"each connection starts runs of its own for a deal (invoice/hs/62515/<deal> and invoice/hs2/62515/<deal>, with idempotency keys of their own), " +
			"so a deal whose webhooks reach both and that both trigger on is invoiced twice. Connections whose triggers never take the same deal " +
			"(a pipeline each, won stages of their own) are fine as they are. Otherwise list each account on one connection only, or give each " +
			"connection its own target; merging the two into one changes the workflow ids of their runs (invoice/<connection>/…), so a deal " +
			"invoiced under the name removed is no longer seen as a duplicate by the connection kept: an event of it that the kept connection " +
			"triggers on invoices it again",
		// Written another way, the same account.
		"      accounts: {\"62515xyz\": a}\n    target: erp\n":            `connections.hs2.target: connections hs and hs2 both list test org 62515xyz and invoice it into target "erp"`,
		"      accounts: {\"62515\": a, \"77777\": b}\n    target: erp\n": `connections.hs2.target: connections hs and hs2 both list test orgs 62515, 77777 and invoice them into target "erp"`,
		// Routed there by account_targets.
		"      accounts: {\"62515\": a, \"1\": b}\n    target: erp2\n    account_targets: {\"62515\": erp}\n": `connections.hs2.account_targets.62515: connections hs and hs2 both list test org 62515 and invoice it into target "erp"`,
	} {
		if ws := load(b); len(ws) != 1 || !strings.HasPrefix(ws[0], want) {
			t.Errorf("%q: warnings %q\nwant one starting %s", b, ws, want)
		}
	}
	// A third connection of it is named with the first only.
	ws := load("      accounts: {\"62515\": a}\n    target: erp\n  hs3:\n    source:\n      type: test-org\n      accounts: {\"62515\": a}\n    target: erp\n")
	if len(ws) != 2 || !strings.HasPrefix(ws[0], "connections.hs2.target: connections hs and hs2 both list test org 62515 ") ||
		!strings.HasPrefix(ws[1], "connections.hs3.target: connections hs and hs3 both list test org 62515 ") {
		t.Errorf("three connections of one account: warnings %q, want hs with hs2, hs with hs3", ws)
	}
	for _, b := range []string{
		"      accounts: {\"62515\": a}\n    target: erp2\n",
		"      accounts: {\"62515\": a, \"1\": b}\n    target: erp\n    account_targets: {\"62515\": erp2}\n",
		"      accounts: {\"11111\": a}\n    target: erp\n",
	} {
		if ws := load(b); len(ws) != 0 {
			t.Errorf("%q: warnings %q, want none", b, ws)
		}
	}
}
