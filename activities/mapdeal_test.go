package activities_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/internal/localcalls"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/model"
)

type oneConnection struct{ conn activities.Connection }

func (o oneConnection) Resolve(string) (activities.Connection, bool) { return o.conn, true }

// A run started with the built-in mapping keeps it when the connection
// names a mapping file by the time the run maps (a restart with a new
// config): as a run started with a file keeps that file's version.
func TestMapDealKeepsTheBuiltinMappingTheRunStartedWith(t *testing.T) {
	file, err := mapping.Parse("m.yaml", []byte("name: custom\ninvoice:\n  reference: '\"CUSTOM-\" + deal.id'\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := &activities.Activities{Connections: oneConnection{activities.Connection{Mapper: file}}}
	ev := model.DealEvent{EventID: "e", Deal: model.Deal{
		ID: "D-1", Stage: "won", Currency: "EUR", Amount: decimal.NewNullDecimal(decimal.RequireFromString("100")),
		Company: model.Company{ID: "C", Name: "Acme"},
	}}

	got, err := a.MapDeal(context.Background(), activities.MapInput{Connection: "c", Event: ev, Mapping: mapping.DefaultName})
	if err != nil {
		t.Fatal(err)
	}
	if got.Mapping != mapping.DefaultName || got.Invoice.Reference != "D-1" {
		t.Fatalf("mapped with %s (reference %q), want the built-in mapping the run started with", got.Mapping, got.Invoice.Reference)
	}

	// A run started with the file (or before runs said which) maps with it.
	got, err = a.MapDeal(context.Background(), activities.MapInput{Connection: "c", Event: ev})
	if err != nil {
		t.Fatal(err)
	}
	if got.Mapping != "custom" || got.Invoice.Reference != "CUSTOM-D-1" {
		t.Fatalf("mapped with %s (reference %q), want the connection's file", got.Mapping, got.Invoice.Reference)
	}
}

type noConnections struct{}

func (noConnections) Resolve(string) (activities.Connection, bool) {
	return activities.Connection{}, false
}

// A worker whose config does not have the run's connection yet (a rolling
// deploy that adds it) maps the deal all the same: the run carries its
// mapping, as a snapshot or as the built-in mapping's name. The map step
// gives up after a few attempts on one worker, so waiting for the config
// would fail the run.
func TestMapDealNeedsNoConnection(t *testing.T) {
	file, err := mapping.Parse("m.yaml", []byte("name: custom\ninvoice:\n  reference: '\"CUSTOM-\" + deal.id'\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := &activities.Activities{Connections: noConnections{}}
	ev := model.DealEvent{EventID: "e", Deal: model.Deal{
		ID: "D-1", Stage: "won", Currency: "EUR", Amount: decimal.NewNullDecimal(decimal.RequireFromString("100")),
		Company: model.Company{ID: "C", Name: "Acme"},
	}}
	got, err := a.MapDeal(context.Background(), activities.MapInput{Connection: "new", Event: ev, Snapshot: file.Snapshot(), Mapping: "custom"})
	if err != nil || got.Invoice.Reference != "CUSTOM-D-1" {
		t.Fatalf("with a snapshot: %+v, %v", got.Invoice.Reference, err)
	}
	got, err = a.MapDeal(context.Background(), activities.MapInput{Connection: "new", Event: ev, Mapping: mapping.DefaultName})
	if err != nil || got.Mapping != mapping.DefaultName || got.Invoice.Reference != "D-1" {
		t.Fatalf("built-in: %+v, %v", got, err)
	}
	// A run from before the mapping's name was passed needs its connection.
	if _, err := a.MapDeal(context.Background(), activities.MapInput{Connection: "new", Event: ev}); err == nil {
		t.Fatal("an old run's input without a mapping mapped with no connection")
	}
}

// A deal whose close date is a placeholder (9999-12-31) maps to a due date
// past the year 9999: the map step fails naming the field, as the record
// of its result would not decode ("10000-01-30" is not a date).
func TestMapDealRefusesDatesPastTheYear9999(t *testing.T) {
	a := &activities.Activities{Connections: noConnections{}}
	ev := model.DealEvent{EventID: "e", Deal: model.Deal{
		ID: "D-1", Stage: "won", Currency: "EUR", Amount: decimal.NewNullDecimal(decimal.RequireFromString("100")),
		Company: model.Company{ID: "C", Name: "Acme"}, CloseDate: model.NewDate(9999, 12, 31),
	}}
	_, err := a.MapDeal(context.Background(), activities.MapInput{Connection: "c", Event: ev, Mapping: mapping.DefaultName})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeValidation || !appErr.NonRetryable() ||
		!strings.Contains(err.Error(), "invoice.due_date") || !strings.Contains(err.Error(), "after the year 9999") {
		t.Fatalf("got %v", err)
	}
}

// TargetName names the target of a connection's CRM account, as the ERP
// steps' failures do, and nothing for a connection the worker lacks.
func TestTargetNameNamesTheAccountsTarget(t *testing.T) {
	a := &activities.Activities{Connections: oneConnection{activities.Connection{TargetName: "books",
		AccountTargets: map[string]activities.NamedTarget{"acme": {Name: "acme-books"}}}}}
	for account, want := range map[string]string{"acme": "acme-books", "other": "books"} {
		if got, err := a.TargetName(context.Background(), activities.TargetInput{Connection: "c", Account: account}); err != nil || got != want {
			t.Errorf("account %q: %q, %v; want %q", account, got, err, want)
		}
	}
	none := &activities.Activities{Connections: noConnection{}}
	if got, err := none.TargetName(context.Background(), activities.TargetInput{Connection: "c"}); err != nil || got != "" {
		t.Errorf("a connection the worker lacks: %q, %v; want none", got, err)
	}
}

type noConnection struct{}

func (noConnection) Resolve(string) (activities.Connection, bool) {
	return activities.Connection{}, false
}

// A run's MappingError says how to try the mapping with the names filled
// in: the worker's config and the mapping's name when the worker has a
// config file, else the mapping's file; never "--mapping NAME".
func TestMapDealMappingErrorNamesTheMappingToTest(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/my maps/bad.yaml"
	file, err := mapping.Parse(path, []byte("name: bad\ninvoice:\n  reference: 'string(dec(deal.name))'\n"))
	if err != nil {
		t.Fatal(err)
	}
	ev := model.DealEvent{EventID: "e", Deal: model.Deal{
		ID: "D-1", Name: "Acme deal", Stage: "won", Currency: "EUR", Amount: decimal.NewNullDecimal(decimal.RequireFromString("100")),
		Company: model.Company{ID: "C", Name: "Acme"},
	}}
	for _, c := range []struct{ config, want string }{
		{"/etc/dealsync/dealsync.yaml", "; fix the mapping (dealsync mapping test --config /etc/dealsync/dealsync.yaml --mapping bad --deal FILE dry-runs it on a deal event saved as FILE), then start the run again with dealsync runs retry"},
		{"", "; fix the mapping (dealsync mapping test --file '" + path + "' --deal FILE dry-runs it on a deal event saved as FILE), then start the run again with dealsync runs retry"},
	} {
		a := &activities.Activities{Connections: oneConnection{activities.Connection{Mapper: file}}, ConfigPath: c.config}
		_, err := a.MapDeal(context.Background(), activities.MapInput{Connection: "c", Event: ev})
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeMapping || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "NAME") {
			t.Errorf("config %q: %v\nwant %q", c.config, err, c.want)
		}
		if msg := activities.WithoutRetryAdvice(appErr.Message()); strings.Contains(msg, "fix the mapping") || !strings.HasPrefix(msg, `mapping "bad": field `) {
			t.Errorf("WithoutRetryAdvice: %q", msg)
		}
	}
}

// A run that read its deal from the CRM (a HubSpot, Salesforce or
// Pipedrive connection: its events are thin) has no deal file to give
// `mapping test --deal`: its MappingError names the --fetch of the same
// deal, with the connection and the account, and the mapping the run
// used: the worker's config and the mapping's name, else the mapping's
// file (not the connection's current mapping, which may be another).
func TestMapDealMappingErrorOfAFetchedDealNamesTheFetch(t *testing.T) {
	path := t.TempDir() + "/my maps/bad.yaml"
	file, err := mapping.Parse(path, []byte("name: bad\ninvoice:\n  reference: 'string(dec(deal.name))'\n"))
	if err != nil {
		t.Fatal(err)
	}
	ev := model.DealEvent{EventID: "e", Account: "6083095", Deal: model.Deal{
		ID: "213973", Name: "Acme deal", Stage: "won", Currency: "EUR", Amount: decimal.NewNullDecimal(decimal.RequireFromString("100")),
		Company: model.Company{ID: "C", Name: "Acme"},
	}}
	for _, c := range []struct{ config, account, want string }{
		{"/etc/dealsync/dealsync.yaml", "6083095", "; fix the mapping (dealsync mapping test --config /etc/dealsync/dealsync.yaml --mapping bad --connection pd --fetch 213973 --account 6083095 " +
			"reads the deal from the CRM as the run did and dry-runs the mapping on it), then start the run again with dealsync runs retry"},
		{"", "", "; fix the mapping (dealsync mapping test --file '" + path + "' --connection pd --fetch 213973 reads the deal from the CRM as the run did and dry-runs the mapping on it), then start"},
	} {
		a := &activities.Activities{Connections: oneConnection{activities.Connection{Mapper: file, Fetcher: noFetch{}}}, ConfigPath: c.config}
		ev.Account = c.account
		_, err := a.MapDeal(context.Background(), activities.MapInput{Connection: "pd", Event: ev})
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeMapping || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "--deal FILE") {
			t.Errorf("config %q: %v\nwant %q", c.config, err, c.want)
		}
		if msg := activities.WithoutRetryAdvice(appErr.Message()); strings.Contains(msg, "fix the mapping") || !strings.HasPrefix(msg, `mapping "bad": field `) {
			t.Errorf("WithoutRetryAdvice: %q", msg)
		}
	}
}

// noFetch is a connection's DealFetcher that is never called.
type noFetch struct{}

func (noFetch) FetchDeal(context.Context, string, string) (model.Deal, error) {
	return model.Deal{}, errors.New("not called")
}

// A local call that fails is noted for its run (localcalls.Ran): the
// SDK's warning of the long workflow task its retries hold is then
// expected (app's logger says so at info).
func TestAFailedLocalCallIsNotedForItsRun(t *testing.T) {
	file, err := mapping.Parse("bad.yaml", []byte("name: bad\ninvoice:\n  reference: 'string(dec(deal.name))'\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := &activities.Activities{Connections: oneConnection{activities.Connection{Mapper: file}}}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	ev := model.DealEvent{EventID: "e", Deal: model.Deal{ID: "D-1", Name: "Acme deal", Stage: "won", Currency: "EUR", Company: model.Company{ID: "C", Name: "Acme"}}}
	began := time.Now()
	if _, err := env.ExecuteLocalActivity(a.MapDeal, activities.MapInput{Connection: "c", Event: ev}); err == nil {
		t.Fatal("the mapping did not fail")
	}
	// The SDK's test environment runs every call under this run id.
	const run = "default-test-run-id"
	if held, _ := localcalls.HeldTask(run, time.Since(began)+time.Second, time.Now()); !held {
		t.Errorf("the failed local call of run %q was not noted", run)
	}
}

// A run that mapped with its snapshot (a mapping file's version as the
// run started) says so at the end of its MappingError, with the hash:
// a Reset in the Web UI replays that version, failing again after a fix,
// and runs retry uses the mapping as it is now. The snapshot's file
// edited since (another hash on the connection) changes nothing. A run
// without a snapshot (the built-in mapping) says nothing of it.
func TestMapDealMappingErrorSaysTheRunUsedItsSnapshot(t *testing.T) {
	path := t.TempDir() + "/bad.yaml"
	file, err := mapping.Parse(path, []byte("name: bad\ninvoice:\n  reference: 'string(dec(deal.name))'\n"))
	if err != nil {
		t.Fatal(err)
	}
	fixed, err := mapping.Parse(path, []byte("name: bad\ninvoice:\n  reference: 'deal.name'\n"))
	if err != nil {
		t.Fatal(err)
	}
	snap := file.Snapshot()
	ev := model.DealEvent{EventID: "e", Deal: model.Deal{
		ID: "D-1", Name: "Acme deal", Stage: "won", Currency: "EUR", Amount: decimal.NewNullDecimal(decimal.RequireFromString("100")),
		Company: model.Company{ID: "C", Name: "Acme"},
	}}
	want := "then start the run again with dealsync runs retry (which says why when it does not); this is the run's mapping as it started (hash " +
		snap.Hash + "), which a Web UI Reset replays; dealsync runs retry uses the mapping as it is now"
	for _, now := range []*mapping.File{file, fixed} {
		a := &activities.Activities{Connections: oneConnection{activities.Connection{Mapper: now}}}
		_, err := a.MapDeal(context.Background(), activities.MapInput{Connection: "c", Event: ev, Snapshot: snap, Mapping: "bad"})
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeMapping || !strings.HasSuffix(appErr.Message(), want) {
			t.Fatalf("the connection's mapping %s: %v\nwant it to end %q", now.Hash(), err, want)
		}
		if msg := activities.WithoutRetryAdvice(appErr.Message()); strings.Contains(msg, "fix the mapping") || strings.Contains(msg, "Reset") || !strings.HasPrefix(msg, `mapping "bad": field `) {
			t.Errorf("WithoutRetryAdvice: %q", msg)
		}
	}
	a := &activities.Activities{Connections: oneConnection{activities.Connection{Mapper: file}}}
	if _, err := a.MapDeal(context.Background(), activities.MapInput{Connection: "c", Event: ev}); err == nil || strings.Contains(err.Error(), "Reset") || strings.Contains(err.Error(), "hash") {
		t.Errorf("a run without a snapshot: %v", err)
	}
}
