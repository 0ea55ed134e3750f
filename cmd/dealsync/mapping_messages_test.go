package main

import (
	"context"
	"os"
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
