package mapping_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/worker"
	"github.com/dealsync/dealsync/workflows"
)

// storeResolver resolves the connection's mapper from a Store per call,
// as connections.Set does.
type storeResolver struct {
	store  *mapping.Store
	target connectors.Target
}

func (r storeResolver) Resolve(string) (activities.Connection, bool) {
	m, ok := r.store.Current().Mapper("live")
	return activities.Connection{Mapper: m, Target: r.target}, ok
}

// editingTarget edits the mapping file (and reloads it) while the run is
// between mapping and invoicing, then records the invoice it is asked for.
type editingTarget struct {
	recordingTarget
	t     *testing.T
	path  string
	store *mapping.Store
}

func (e *editingTarget) FindOrCreateCustomer(ctx context.Context, c model.Customer, key string) (connectors.CustomerRef, error) {
	writeMapping(e.t, e.path, `"v2"`)
	if err := e.store.Reload(); err != nil {
		e.t.Errorf("reload: %v", err)
	}
	return e.recordingTarget.FindOrCreateCustomer(ctx, c, key)
}

// A run started before an edit completes with the old version: the
// mapping is evaluated once, in a recorded (local) activity, and the rest
// of the run uses the recorded invoice.
func TestRunIsPinnedToItsMappingVersion(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "live.yaml")
	writeMapping(t, path, `"v1"`)
	store, err := mapping.NewStore(mapping.Sources{Files: []string{path}}, mapping.StoreOptions{Required: []string{"live"}})
	if err != nil {
		t.Fatal(err)
	}
	v1, _ := store.Current().Get("live")
	target := &editingTarget{t: t, path: path, store: store}

	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	worker.Register(env, &activities.Activities{Connections: storeResolver{store: store, target: target}})
	env.ExecuteWorkflow(workflows.InvoiceDealName, workflows.InvoiceDealInput{
		Connection:      "demo",
		Event:           wonEvent("closedwon", "negotiation"),
		Retry:           workflows.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 1},
		ActivityTimeout: time.Minute,
	})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("run failed: %v", err)
	}
	var res workflows.InvoiceDealResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}

	v2, _ := store.Current().Get("live")
	if v2.Hash() == v1.Hash() {
		t.Fatal("the file was not edited during the run")
	}
	if res.Mapping != "live" || res.MappingHash != v1.Hash() {
		t.Errorf("run recorded mapping %s@%s, want live@%s (the version it started with)", res.Mapping, res.MappingHash, v1.Hash())
	}
	if len(target.created) != 1 || target.created[0].Memo != "v1" {
		t.Errorf("invoice created with %+v, want the v1 memo", target.created)
	}
	// A run started after the edit uses the new version.
	if inv, _ := v2.Map(wonEvent("closedwon", "")); inv.Memo != "v2" {
		t.Errorf("new runs get memo %q, want v2", inv.Memo)
	}
	_ = os.Remove(path)
}

// recordingTarget records the invoices it is asked to create.
type recordingTarget struct{ created []model.Invoice }

func (r *recordingTarget) FindOrCreateCustomer(context.Context, model.Customer, string) (connectors.CustomerRef, error) {
	return connectors.CustomerRef{ID: "CUST-1"}, nil
}

func (r *recordingTarget) CreateInvoice(_ context.Context, inv model.Invoice, _ connectors.CustomerRef, _ string) (connectors.InvoiceResult, error) {
	r.created = append(r.created, inv)
	return connectors.InvoiceResult{InvoiceID: "INV-1"}, nil
}

func (r *recordingTarget) PlanInvoice(model.Invoice, connectors.CustomerRef, string) (connectors.Request, error) {
	return connectors.Request{}, nil
}

// The file changes after the run started but before it maps (during the
// settle time): the run still maps with the version it started with,
// carried in its input as a snapshot, while the worker's current mapping
// is already the new one.
func TestRunMapsWithTheVersionItStartedWith(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "live.yaml")
	writeMapping(t, path, `"v1"`)
	store, err := mapping.NewStore(mapping.Sources{Files: []string{path}}, mapping.StoreOptions{Required: []string{"live"}})
	if err != nil {
		t.Fatal(err)
	}
	v1, _ := store.Current().Get("live")
	target := &recordingTarget{}

	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	worker.Register(env, &activities.Activities{Connections: storeResolver{store: store, target: target}})
	env.RegisterDelayedCallback(func() {
		writeMapping(t, path, `"v2"`)
		if err := store.Reload(); err != nil {
			t.Errorf("reload: %v", err)
		}
	}, time.Second)
	env.ExecuteWorkflow(workflows.InvoiceDealName, workflows.InvoiceDealInput{
		Connection:      "demo",
		Event:           wonEvent("closedwon", "negotiation"),
		Retry:           workflows.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 1},
		ActivityTimeout: time.Minute,
		SettleTime:      5 * time.Second,
		Mapping:         v1.Name(),
		MappingHash:     v1.Hash(),
		MappingSnapshot: v1.Snapshot(),
	})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("run failed: %v", err)
	}
	var res workflows.InvoiceDealResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if cur, _ := store.Current().Get("live"); cur.Hash() == v1.Hash() {
		t.Fatal("the file was not edited before the run mapped")
	}
	if res.MappingHash != v1.Hash() || len(target.created) != 1 || target.created[0].Memo != "v1" {
		t.Fatalf("run mapped with %s (invoice %+v), want v1 %s", res.MappingHash, target.created, v1.Hash())
	}
}
