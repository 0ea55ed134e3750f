package rerun

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"

	"github.com/dealsync/dealsync/activities"
)

// FailureTypes is sorted, each type once: the list --failure refuses
// others with, and the docs' table is checked against.
func TestFailureTypesAreSortedAndUnique(t *testing.T) {
	if !slices.IsSorted(FailureTypes) || len(slices.Compact(slices.Clone(FailureTypes))) != len(FailureTypes) {
		t.Errorf("FailureTypes %v: want them sorted, each once", FailureTypes)
	}
	for _, typ := range []string{activities.ErrTypeERPUnauthorized, activities.ErrTypeMapping, activities.ErrTypeTargetMismatch, "StepTimedOut", "DealNotWon"} {
		if !slices.Contains(FailureTypes, typ) {
			t.Errorf("FailureTypes lacks %s", typ)
		}
	}
}

// --failure takes types by their names, in any case, separated by commas
// or in flags of their own, each once; a name of no type is refused
// listing the types.
func TestParseFailureTypes(t *testing.T) {
	got, err := ParseFailureTypes([]string{"erpunauthorized, MappingError", "ERPUnauthorized", "ValidationError"})
	if want := []string{"ERPUnauthorized", "MappingError", "ValidationError"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("%q, %v; want %q", got, err, want)
	}
	if got, err := ParseFailureTypes(nil); err != nil || got != nil {
		t.Errorf("no --failure: %q, %v; want none", got, err)
	}
	for _, bad := range [][]string{{"ERPUnauthorised"}, {"MappingError,"}, {"TimeoutError"}} {
		_, err := ParseFailureTypes(bad)
		if !errors.Is(err, ErrUnknownFailureType) || !strings.Contains(err.Error(), strings.Join(FailureTypes, ", ")) {
			t.Errorf("%q: %v; want it refused, listing the types", bad, err)
		}
	}
}

// --failure with a selection it would find nothing in is refused, saying
// why.
func TestCheckFailure(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string // "" accepted
	}{
		{Options{}, ""},
		{Options{Failure: []string{"ERPUnauthorized", "MappingError"}}, ""},
		{Options{Failure: []string{"WriteBackFailed"}, WriteBack: true}, ""},
		{Options{Failure: []string{"ERPUnauthorized"}, TimedOut: true, Canceled: true}, "the runs --timed-out, --canceled adds have none"},
		{Options{Failure: []string{"WriteBackFailed"}, WriteBack: true, Completed: true}, "the runs --completed adds have none"},
		{Options{Failure: []string{"MappingError", "DealNotWon"}}, "DealNotWon: runs of deals no longer won"},
		{Options{Failure: []string{"CRMUnauthorized"}, WriteBack: true}, "every run --writeback selects failed WriteBackFailed"},
		{Options{Failure: []string{"WriteBackFailed"}}, "give --writeback"},
	} {
		err := c.o.CheckFailure()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v; want it accepted", c.o, err)
		case c.want != "" && (!errors.Is(err, ErrInvalidFailure) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: %v; want it refused saying %q", c.o, err, c.want)
		}
	}
	// Failed refuses it too, listing nothing.
	f := &failedRuns{t: t, ids: []string{"d1"}}
	if _, err := Failed(context.Background(), f, demoSet(t), &countingStarter{}, Options{TaskQueue: "dealsync", Failure: []string{"MappingError"}, Terminated: true}); !errors.Is(err, ErrInvalidFailure) || f.read != 0 {
		t.Errorf("%v, %d runs listed; want ErrInvalidFailure before any", err, f.read)
	}
}

// With --failure, Failed keeps the runs whose failure is of those types:
// the others are read (their close events) and left out of the results,
// nothing started for them; a run whose failure cannot be read is an
// error, not left out unseen.
func TestFailedKeepsTheRunsOfTheFailureTypes(t *testing.T) {
	failures := map[string]string{"d1": "MappingError", "d2": "ERPUnauthorized", "d3": "ERPRejected", "d4": "ERPUnauthorized", "d5": "unreadable", "d6": "ValidationError"}
	for _, dry := range []bool{false, true} {
		f := &failedRuns{t: t, ids: []string{"d1", "d2", "d3", "d4", "d5", "d6"}, failures: failures}
		starter := &countingStarter{}
		results, err := Failed(context.Background(), f, demoSet(t), starter, Options{TaskQueue: "dealsync", Failure: []string{"ERPUnauthorized", "ValidationError"}, DryRun: dry})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range results {
			got = append(got, r.WorkflowID)
			if r.WorkflowID == "d5" {
				if !strings.Contains(r.Error, "frontend unavailable: its failure type is unknown") {
					t.Errorf("d5: %+v; want the read's error", r)
				}
			} else if r.Error != "" || (dry && (r.Skipped != dryRun || r.FailureType != failures[r.WorkflowID])) {
				t.Errorf("dry run %v: %+v", dry, r)
			}
		}
		if want := "d2 d4 d5 d6"; strings.Join(got, " ") != want {
			t.Errorf("dry run %v: results %q, want %q", dry, got, want)
		}
		if want := map[bool]string{false: "d2 d4 d6", true: ""}[dry]; strings.Join(starter.started, " ") != want {
			t.Errorf("dry run %v: started %q, want %q", dry, starter.started, want)
		}
	}
	// Without --failure every run is kept.
	f := &failedRuns{t: t, ids: []string{"d1", "d2", "d3"}, failures: failures}
	if results, err := Failed(context.Background(), f, demoSet(t), &countingStarter{}, Options{TaskQueue: "dealsync"}); err != nil || len(results) != 3 {
		t.Errorf("%+v, %v; want all 3 runs", results, err)
	}
	// Each run's close event is read once, for --failure, not again for
	// whether its invoice may exist or, on a dry run, what it failed with.
	for _, dry := range []bool{false, true} {
		f := &failedRuns{t: t, ids: []string{"d1", "d2", "d3", "d4"}, failures: failures}
		if _, err := Failed(context.Background(), f, demoSet(t), &countingStarter{}, Options{TaskQueue: "dealsync", Failure: []string{"ERPUnauthorized"}, DryRun: dry}); err != nil || f.closeReads != 4 {
			t.Errorf("dry run %v: %v, %d close events read; want 4", dry, err, f.closeReads)
		}
	}
}

// The runs --failure leaves out count among those --limit's bound reads:
// a selection mostly of other types does not make Failed read it all.
func TestFailedLimitBoundCountsTheRunsLeftOut(t *testing.T) {
	f := &failedRuns{t: t, failures: map[string]string{}}
	for i := range 305 {
		id := fmt.Sprintf("d%d", i)
		f.ids = append(f.ids, id)
		f.failures[id] = "MappingError"
	}
	f.failures["d7"] = "ERPUnauthorized"
	results, err := Failed(context.Background(), f, demoSet(t), &countingStarter{}, Options{TaskQueue: "dealsync", Limit: 2, Failure: []string{"ERPUnauthorized"}})
	if err == nil || !strings.Contains(err.Error(), "stopped after reading 200 selected runs (199 of them left out by --failure)") {
		t.Fatalf("error %v, want one saying it stopped after reading 200 runs, 199 left out", err)
	}
	if len(results) != 1 || results[0].WorkflowID != "d7" || results[0].NewRun == "" || f.closeReads != 200 {
		t.Errorf("%+v, %d close events read; want d7 started, 200 read", results, f.closeReads)
	}
}

// `runs list --failure` lists the failed runs of those types, and those
// whose failure could not be read, up to the limit, saying more may
// match; it reads at most readsPerRetry × the limit runs.
func TestListByFailure(t *testing.T) {
	ctx := context.Background()
	l := &listedRuns{t: t, n: 40, pageMax: 7, closes: func(i int) (*historypb.HistoryEvent, error) {
		switch {
		case i == 6:
			return nil, serviceerror.NewUnavailable("frontend unavailable")
		case i%4 == 0:
			return failedWith(appFailure(activities.ErrTypeERPUnauthorized, "401")), nil
		}
		return mappingFailed(), nil
	}}
	runs, more, err := List(ctx, l, ListOptions{TaskQueue: "dealsync", Limit: 3, Failure: []string{"ERPUnauthorized"}})
	var got []string
	for _, r := range runs {
		got = append(got, r.RunID)
	}
	if err != nil || !more || strings.Join(got, " ") != "run-0 run-4 run-6" {
		t.Fatalf("%q, more %v, %v; want run-0 run-4 run-6 (its failure unread), more", got, more, err)
	}
	if runs[2].FailureReadError == "" || runs[0].FailureType != "ERPUnauthorized" {
		t.Errorf("%+v", runs)
	}
	if q := l.queries[0]; q != `TaskQueue = "dealsync" AND ExecutionStatus = "Failed"` || strings.HasPrefix(l.queries[1], "TaskQueue") {
		t.Errorf("filters %q; want the failed runs only, one page read (the limit reached at its end)", l.queries)
	}
	// A limit reached within a page, another of the page matching: more.
	l.queries = nil
	runs, more, err = List(ctx, l, ListOptions{TaskQueue: "dealsync", Limit: 2, Failure: []string{"ERPUnauthorized"}})
	if err != nil || !more || len(runs) != 2 || runs[1].RunID != "run-4" {
		t.Errorf("%+v, more %v, %v; want run-0 and run-4, more", runs, more, err)
	}
	// All of them, when fewer match than the limit: no more.
	l.queries = nil
	runs, more, err = List(ctx, l, ListOptions{TaskQueue: "dealsync", Limit: 50, Failure: []string{"ERPUnauthorized"}, Query: `Connection = "shop"`})
	if err != nil || more || len(runs) != 11 {
		t.Errorf("%d runs, more %v, %v; want the 11 of 0, 4, …, 36 and 6, no more", len(runs), more, err)
	}
	if q := l.queries[0]; q != `TaskQueue = "dealsync" AND ExecutionStatus = "Failed" AND (Connection = "shop")` {
		t.Errorf("filter %q", q)
	}
	// The reads' bound: 100 × the limit runs listed, then more may match.
	l = &listedRuns{t: t, n: 250, pageMax: 100}
	runs, more, err = List(ctx, l, ListOptions{TaskQueue: "dealsync", Limit: 1, Failure: []string{"ValidationError"}})
	if err != nil || !more || len(runs) != 0 || len(l.reads) != 50 {
		t.Errorf("%d runs, more %v, %v, %d close events read; want none, more, the 50 failed of the first 100 read", len(runs), more, err, len(l.reads))
	}
}

// Once --limit runs are kept, `runs list --failure` reads no further
// page for whether more match (each run a close event read): the rest of
// the page says it, or else more may match. Here the limit is kept by
// the first page's first run, the next match is on the fifth page.
func TestListByFailureStopsReadingAtTheLimit(t *testing.T) {
	l := &listedRuns{t: t, n: 40, pageMax: 7, closes: func(i int) (*historypb.HistoryEvent, error) {
		if i == 0 || i == 30 {
			return failedWith(appFailure(activities.ErrTypeERPUnauthorized, "401")), nil
		}
		return mappingFailed(), nil
	}}
	runs, more, err := List(context.Background(), l, ListOptions{TaskQueue: "dealsync", Limit: 1, Failure: []string{"ERPUnauthorized"}})
	if err != nil || !more || len(runs) != 1 || runs[0].RunID != "run-0" {
		t.Fatalf("%+v, more %v, %v; want run-0, more", runs, more, err)
	}
	if len(l.reads) != 4 {
		t.Errorf("close events read of %v; want the first page's 4 failed runs only", l.reads)
	}
	// The reads spent at a page's end: no page more is listed.
	l = &listedRuns{t: t, n: 250, pageMax: 100}
	if runs, more, err := List(context.Background(), l, ListOptions{TaskQueue: "dealsync", Limit: 1, Failure: []string{"ValidationError"}}); err != nil || !more || len(runs) != 0 {
		t.Fatalf("%+v, more %v, %v; want none, more", runs, more, err)
	}
	if len(l.queries) != 1 {
		t.Errorf("filters %q; want the first page's alone", l.queries)
	}
}

// FailureTypes names every failure type dealsync declares (an ErrType
// constant of activities or workflows, the types its runs fail with): a
// type added there without being added here, which --failure would
// refuse, fails this test.
func TestFailureTypesNameEveryDeclaredType(t *testing.T) {
	var declared []string
	for _, dir := range []string{"../activities", "../workflows"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range f.Decls {
				g, ok := d.(*ast.GenDecl)
				if !ok || g.Tok != token.CONST {
					continue
				}
				for _, spec := range g.Specs {
					v := spec.(*ast.ValueSpec)
					for i, name := range v.Names {
						if !strings.HasPrefix(name.Name, "ErrType") || i >= len(v.Values) {
							continue
						}
						lit, ok := v.Values[i].(*ast.BasicLit)
						if !ok || lit.Kind != token.STRING {
							continue // another's constant (workflows.ErrTypeDealNotWon)
						}
						typ, err := strconv.Unquote(lit.Value)
						if err != nil {
							t.Fatal(err)
						}
						declared = append(declared, typ)
					}
				}
			}
		}
	}
	if len(declared) < 10 {
		t.Fatalf("found only %v declared", declared)
	}
	for _, typ := range declared {
		if !slices.Contains(FailureTypes, typ) {
			t.Errorf("failure type %s is declared, but not in FailureTypes (what --failure takes)", typ)
		}
	}
}
