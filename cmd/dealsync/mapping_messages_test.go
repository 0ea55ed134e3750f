package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A CRM's own webhook body given as --deal: exit 2, saying what it is and
// the --fetch that tests the mapping on its deal instead.
func TestMappingTestOnAVendorWebhookSaysToFetchTheDeal(t *testing.T) {
	dir := t.TempDir()
	deal := writeFile(t, filepath.Join(dir, "pipedrive.json"), `{"data":{"id":178,"title":"KIPFFLOW"},"previous":null,
 "meta":{"action":"create","company_id":"15747575","entity_id":"178","entity":"deal","version":"2.0"}}`)
	_, err := runOut(context.Background(), "mapping", "test", "--config", "../../examples/dealsync.yaml", "--mapping", "generic-standard", "--deal", deal)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "a Pipedrive webhook body (meta.version 2.0), not a deal event") ||
		!strings.Contains(err.Error(), "dealsync mapping test --connection NAME --fetch 178 --save FILE") {
		t.Errorf("exit %d: %v", exitCode(err), err)
	}
}

// With a config whose connection of the mapping is of the CRM the body
// is from, the --fetch command is filled in: the config, the mapping and
// the connection, ready to run; a body of another CRM keeps NAME.
func TestMappingTestOnAVendorWebhookFillsInTheConnection(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "pd.yaml"), "name: pd-qbo\ninvoice:\n  reference: '\"DS-\" + event.account + \"-\" + deal.id'\n")
	cfg := writeFile(t, filepath.Join(dir, "dealsync.yaml"), `mappings: {files: [pd.yaml]}
targets: {books: {type: http, base_url: "http://127.0.0.1:1"}}
connections:
  pd:
    target: books
    mapping: pd-qbo
    trigger: {won_stages: [won]}
    source: {type: pipedrive, webhook_user: u, webhook_password: p, accounts: {"15747575": {api_token: t}}}
`)
	deal := writeFile(t, filepath.Join(dir, "pipedrive.json"), `{"data":{"id":178,"title":"KIPFFLOW"},"previous":null,
 "meta":{"action":"create","company_id":"15747575","entity_id":"178","entity":"deal","version":"2.0"}}`)
	_, err := runOut(context.Background(), "mapping", "test", "--config", cfg, "--mapping", "pd-qbo", "--deal", deal)
	want := "dealsync mapping test --config " + cfg + " --mapping pd-qbo --connection pd --fetch 178 --save FILE"
	if exitCode(err) != 2 || !strings.Contains(err.Error(), want) {
		t.Errorf("exit %d: %v\nwant it to contain %q", exitCode(err), err, want)
	}
	// A mapping read with --file is the file in the command: --mapping
	// would test the config's own of that name.
	draft := writeFile(t, filepath.Join(dir, "draft.yaml"), "name: pd-qbo\ninvoice:\n  reference: '\"DS-\" + deal.id'\n")
	_, err = runOut(context.Background(), "mapping", "test", "--config", cfg, "--file", draft, "--deal", deal)
	want = "dealsync mapping test --config " + cfg + " --file " + draft + " --connection pd --fetch 178 --save FILE"
	if exitCode(err) != 2 || !strings.Contains(err.Error(), want) {
		t.Errorf("--file: exit %d: %v\nwant it to contain %q", exitCode(err), err, want)
	}
	hubspot := writeFile(t, filepath.Join(dir, "hubspot.json"), `[{"objectId":697680835,"propertyName":"dealstage","portalId":5799819,"subscriptionType":"deal.propertyChange","eventId":1}]`)
	_, err = runOut(context.Background(), "mapping", "test", "--config", cfg, "--mapping", "pd-qbo", "--deal", hubspot)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "dealsync mapping test --connection NAME --fetch 697680835") {
		t.Errorf("a HubSpot body for a Pipedrive connection: exit %d: %v", exitCode(err), err)
	}
}

// --dir on a case without an expected file says that --update writes it.
func TestMappingTestDirSaysUpdateWritesANewCase(t *testing.T) {
	dir := t.TempDir()
	body, err := os.ReadFile("../../examples/closed-won.json")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "new-deal.deal.json"), string(body))
	args := []string{"mapping", "test", "--config", "../../examples/dealsync.yaml", "--mapping", "generic-standard", "--dir", dir}
	_, err = runOut(context.Background(), args...)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "neither new-deal.invoice.json nor new-deal.error.txt can be read; for a new case, run again with --update: "+
		"it writes new-deal.invoice.json (or new-deal.error.txt, when the mapping fails) from the current output, to review before you keep it") {
		t.Fatalf("exit %d: %v", exitCode(err), err)
	}
	if strings.Contains(err.Error(), "cases without either file") {
		t.Errorf("one new case is named as several: %v", err)
	}
	// Several new cases: the run stops at the first, and names them all.
	writeFile(t, filepath.Join(dir, "other-deal.deal.json"), string(body))
	writeFile(t, filepath.Join(dir, "third-deal.deal.json"), string(body))
	if _, err := runOut(context.Background(), args...); exitCode(err) != 2 || !strings.Contains(err.Error(), "(the 3 cases without either file: new-deal, other-deal, third-deal)") {
		t.Errorf("three new cases: exit %d: %v", exitCode(err), err)
	}
	// What it says works.
	if _, err := runOut(context.Background(), append(args, "--update")...); err != nil {
		t.Fatal(err)
	}
	if _, err := runOut(context.Background(), args...); err != nil {
		t.Errorf("after --update: %v", err)
	}
}

// Files in a golden folder that look like a case's but are part of none
// (an expected file without its deal, a deal file named unlike
// NAME.deal.json) fail the run, each named with what it lacks or should
// be called, instead of being left out silently; other files are
// ignored. A folder that does not exist says so.
func TestMappingTestDirFailsOnFilesThatArePartOfNoCase(t *testing.T) {
	dir := t.TempDir()
	for src, dst := range map[string]string{"won-de-two-lines.deal.json": "a.deal.json", "won-de-two-lines.invoice.json": "a.invoice.json"} {
		body, err := os.ReadFile("../../examples/mappings/generic-standard/" + src)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, dst), string(body))
	}
	args := []string{"mapping", "test", "--config", "../../examples/dealsync.yaml", "--mapping", "generic-standard", "--dir", dir}
	writeFile(t, filepath.Join(dir, "README.md"), "cases\n")
	writeFile(t, filepath.Join(dir, "a.invoice.json~"), "{}")
	if out, err := runOut(context.Background(), args...); err != nil || !strings.Contains(out, "1 case, 0 failed (") {
		t.Fatalf("unrelated files: %v\n%s", err, out)
	}
	for name, body := range map[string]string{"orphan.invoice.json": "{}", "orphan2.error.txt": "x\n", "typo.deal.jsn": "{}", "Upper.Deal.json": "{}"} {
		writeFile(t, filepath.Join(dir, name), body)
	}
	out, err := runOut(context.Background(), args...)
	for _, want := range []string{
		"ok      a\n",
		"FAIL    orphan.invoice.json\n    an expected invoice without its deal orphan.deal.json: part of no case, it checks nothing; add the deal, or remove the file\n",
		"FAIL    orphan2.error.txt\n    an expected error without its deal orphan2.deal.json: part of no case",
		"FAIL    typo.deal.jsn\n    looks like a case's deal but is part of no case: a case's files are named NAME.deal.json, NAME.invoice.json and NAME.error.txt, " +
			"those suffixes in lower case; rename it typo.deal.json, or move it out of the folder\n",
		"FAIL    Upper.Deal.json\n    looks like a case's deal but is part of no case: ",
		"rename it Upper.deal.json, or",
		"1 case, 0 failed, 4 files not part of a case (",
	} {
		if exitCode(err) != 1 || !strings.Contains(out, want) {
			t.Errorf("exit %d, want %q in\n%s", exitCode(err), want, out)
		}
	}
	if strings.Contains(out, "README") || strings.Contains(out, "~") {
		t.Errorf("an unrelated file is named:\n%s", out)
	}
	out, err = runOut(context.Background(), append(args, "--json")...)
	if exitCode(err) != 1 || !strings.Contains(out, `"failed": 4`) || !strings.Contains(out, `"stray_files": 4`) || !strings.Contains(out, `"stray": "an expected invoice without its deal orphan.deal.json`) {
		t.Errorf("--json: exit %d\n%s", exitCode(err), out)
	}
	// No case at all: the files are named in the refusal.
	only := t.TempDir()
	writeFile(t, filepath.Join(only, "x.invoice.json"), "{}")
	args[len(args)-1] = only
	if _, err := runOut(context.Background(), args...); exitCode(err) != 2 || !strings.Contains(err.Error(), "no golden cases (NAME.deal.json with NAME.invoice.json or NAME.error.txt); x.invoice.json: an expected invoice without its deal") {
		t.Errorf("no case: exit %d: %v", exitCode(err), err)
	}
	args[len(args)-1] = filepath.Join(only, "nodir")
	if _, err := runOut(context.Background(), args...); exitCode(err) != 2 || !strings.Contains(err.Error(), "nodir: the folder does not exist") {
		t.Errorf("no folder: exit %d: %v", exitCode(err), err)
	}
}

// An unknown --target names the config's targets, and the one it is a
// typo of.
func TestMappingTestUnknownTargetNamesTheTargets(t *testing.T) {
	args := []string{"mapping", "test", "--config", "../../examples/dealsync.yaml", "--mapping", "generic-standard", "--deal", "../../examples/closed-won.json", "--target"}
	_, err := runOut(context.Background(), append(args, "sanbox")...)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), `no target "sanbox" in the config (did you mean sandbox? its targets: sandbox)`) {
		t.Errorf("a typo: exit %d: %v", exitCode(err), err)
	}
	_, err = runOut(context.Background(), append(args, "nope")...)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), `no target "nope" in the config (its targets: sandbox)`) {
		t.Errorf("another name: exit %d: %v", exitCode(err), err)
	}
}

// mapping lint with files and --config checks the config, and the files:
// --config was silently ignored. A file that defines a mapping name a
// config's file defines (an edited copy of it) stands in for that file,
// said in a note: it failed as a clash with the very file it is a draft
// of, at that file.
func TestMappingLintFilesWithConfigUsesTheConfig(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("../../examples/mappings/generic-standard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	edited := writeFile(t, filepath.Join(dir, "edited.yaml"), string(src))
	draft := writeFile(t, filepath.Join(dir, "draft.yaml"), strings.Replace(string(src), "name: generic-standard", "name: draft", 1))
	cfg := "../../examples/dealsync.yaml"
	out, err := runOut(context.Background(), "mapping", "lint", "--config", cfg, edited)
	if err != nil || !strings.Contains(out, "note: "+edited+`: mapping "generic-standard" stands in for the config's ../../examples/mappings/generic-standard.yaml`) ||
		!strings.Contains(out, "ok: 1 mapping(s): generic-standard") {
		t.Errorf("an edited copy of the config's file: %v\n%s", err, out)
	}
	out, err = runOut(context.Background(), "mapping", "lint", "--config", cfg, edited, "--json")
	if err != nil || !strings.Contains(out, `"notes": [`) || !strings.Contains(out, `stands in for the config's`) {
		t.Errorf("--json: %v\n%s", err, out)
	}
	broken := writeFile(t, filepath.Join(dir, "broken.yaml"), strings.Replace(string(src), `reference: '"DS-" + deal.id'`, "reference: 'deal.nope'", 1))
	out, err = runOut(context.Background(), "mapping", "lint", "--config", cfg, broken)
	if exitCode(err) != 1 || !strings.Contains(out, broken+":") || !strings.Contains(out, "no field nope") {
		t.Errorf("a broken edited copy: exit %d: %v\n%s", exitCode(err), err, out)
	}
	out, err = runOut(context.Background(), "mapping", "lint", "--config", cfg, edited, "../../examples/mappings/generic-standard.yaml")
	if exitCode(err) != 1 || !strings.Contains(out, `mapping "generic-standard" is also defined in `) {
		t.Errorf("two files given that define one name: exit %d: %v\n%s", exitCode(err), err, out)
	}
	out, err = runOut(context.Background(), "mapping", "lint", "--config", cfg, "../../examples/mappings/generic-standard.yaml")
	if err != nil || strings.Contains(out, "note:") || !strings.Contains(out, "ok: 1 mapping(s): generic-standard") {
		t.Errorf("the config's own file: %v\n%s", err, out)
	}
	out, err = runOut(context.Background(), "mapping", "lint", "--config", cfg, draft)
	if err != nil || strings.Contains(out, "note:") || !strings.Contains(out, "ok: 2 mapping(s): draft, generic-standard") {
		t.Errorf("a new file: %v\n%s", err, out)
	}
	_, err = runOut(context.Background(), "mapping", "lint", "--config", filepath.Join(dir, "missing.yaml"), draft)
	if exitCode(err) != 2 {
		t.Errorf("a config that cannot be read: exit %d: %v", exitCode(err), err)
	}
}

// A mapping that loads but may not say what it means (time_zone EST) is a
// "warning:" line of mapping lint, with its file:line:col ("warnings" with
// --json), files given or a config's, and the exit status stays 0.
func TestMappingLintPrintsWarnings(t *testing.T) {
	dir := t.TempDir()
	tz := writeFile(t, filepath.Join(dir, "tz.yaml"), "name: tz\ntime_zone: EST\ninvoice:\n  memo: deal.name\n")
	clean := writeFile(t, filepath.Join(dir, "clean.yaml"), "name: clean\ntime_zone: America/New_York\n")
	want := "warning: " + tz + `:2:12: time_zone: "EST" is a legacy zone name: UTC-05:00 all year, without daylight saving`
	out, err := runOut(context.Background(), "mapping", "lint", tz, clean)
	if err != nil || !strings.Contains(out, want) || strings.Count(out, "warning:") != 1 || !strings.Contains(out, "ok: 2 mapping(s): clean, tz") {
		t.Errorf("files: %v\n%s\nwant exit 0 and %q", err, out, want)
	}
	cfg := writeFile(t, filepath.Join(dir, "dealsync.yaml"), fmt.Sprintf("mappings: {files: [%q, %q]}\n", tz, clean))
	out, err = runOut(context.Background(), "mapping", "lint", "--config", cfg)
	if err != nil || !strings.Contains(out, want) || strings.Count(out, "warning:") != 1 {
		t.Errorf("--config: %v\n%s\nwant exit 0 and %q", err, out, want)
	}
	out, err = runOut(context.Background(), "mapping", "lint", tz, "--json")
	var doc struct {
		OK       bool `json:"ok"`
		Warnings []struct {
			File    string `json:"file"`
			Line    int    `json:"line"`
			Key     string `json:"key"`
			Message string `json:"message"`
		} `json:"warnings"`
	}
	if err != nil || json.Unmarshal([]byte(out), &doc) != nil || !doc.OK || len(doc.Warnings) != 1 || doc.Warnings[0].File != tz ||
		doc.Warnings[0].Line != 2 || doc.Warnings[0].Key != "time_zone" || !strings.HasPrefix(doc.Warnings[0].Message, `"EST" is a legacy zone name`) {
		t.Errorf("--json: %v\n%s", err, out)
	}
}

// shellWord's words read back as themselves in a POSIX shell, whatever
// they hold (a config path with a space or a quote).
func TestShellWordQuotesForTheShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	words := []string{"plain.yaml", "/etc/dealsync/a b.yaml", "it's.yaml", `"$HOME"`, "a;b", "", "-x", "~/x", "*"}
	var line []string
	for _, w := range words {
		line = append(line, shellWord(w))
	}
	out, err := exec.Command(sh, "-c", "printf '[%s]\\n' "+strings.Join(line, " ")).Output()
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, w := range words {
		want.WriteString("[" + w + "]\n")
	}
	if string(out) != want.String() {
		t.Errorf("the shell read %s as:\n%s\nwant:\n%s", strings.Join(line, " "), out, want.String())
	}
}
