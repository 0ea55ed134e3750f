package app

import (
	"bytes"
	"log/slog"
	"reflect"
	"strings"
	"testing"
)

// Warnings that several connections share are one line naming them all,
// with its advice whole; a warning of one connection, or one that differs
// (another target), stays as it is; each keeps the order it first appears in.
func TestGroupWarnings(t *testing.T) {
	names := []string{"demo", "ext", "shop", "shop2"}
	lookup := func(conn, target string) string {
		return "connection " + conn + ": target " + target + " (http) does not say lookup_invoices, …; set lookup_invoices: true on target " + target
	}
	warnings := map[string][]string{
		"demo":  {lookup("demo", "sandbox"), "HubSpot signs the URL it calls"},
		"ext":   {lookup("ext", "erp")},
		"shop":  {lookup("shop", "sandbox"), "HubSpot signs the URL it calls", "connection shop: its own"},
		"shop2": {lookup("shop2", "sandbox")},
	}
	got := GroupWarnings(names, warnings)
	want := []SharedWarning{
		{[]string{"demo", "shop", "shop2"}, "connections demo, shop, shop2: target sandbox (http) does not say lookup_invoices, …; set lookup_invoices: true on target sandbox"},
		{[]string{"demo", "shop"}, "HubSpot signs the URL it calls"},
		{[]string{"ext"}, lookup("ext", "erp")},
		{[]string{"shop"}, "connection shop: its own"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

// dealsync dev's, serve's and the intake's start logs the lookup_invoices
// warning of connections that share an http target once, naming them,
// with the connections in its "connections" attribute.
func TestIntakeLogsASharedWarningOnce(t *testing.T) {
	dir := t.TempDir()
	yaml := `
targets:
  erp: {type: http, base_url: "https://erp.example.com/api"}
  other: {type: http, base_url: "https://other.example.com/api"}
connections:
` + genericConn("shop", "erp", "") + genericConn("shop2", "erp", "") + genericConn("ext", "other", "")
	cfg, set := loadAndBuild(t, writeIn(t, dir, "dealsync.yaml", yaml))
	var out bytes.Buffer
	logWarnings(cfg, set, slog.New(slog.NewTextHandler(&out, nil)))
	var lookups []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if strings.Contains(l, "does not say lookup_invoices") {
			lookups = append(lookups, l)
		}
	}
	if len(lookups) != 2 ||
		!strings.Contains(lookups[0], `msg="connection ext: target other (http) does not say lookup_invoices`) || !strings.HasSuffix(lookups[0], " connection=ext") ||
		!strings.Contains(lookups[1], `msg="connections shop, shop2: target erp (http) does not say lookup_invoices`) || !strings.HasSuffix(lookups[1], " connections=shop,shop2") ||
		!strings.Contains(lookups[1], "set lookup_invoices: true on target erp if the API lists invoices by reference") {
		t.Errorf("lookup_invoices lines:\n%s", strings.Join(lookups, "\n"))
	}
}
