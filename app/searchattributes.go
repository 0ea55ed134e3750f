package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/dealsync/dealsync/workflows"
)

// SearchAttributeError says which of dealsync's search attributes a
// namespace lacks, or has with another type, and how to register them.
// Without them every start fails: the intake answers 5xx to every webhook.
type SearchAttributeError struct {
	Namespace string
	// Missing are sorted by name.
	Missing []MissingAttribute
}

// MissingAttribute is one search attribute a namespace lacks (Have "") or
// has with another type.
type MissingAttribute struct {
	Name, Want, Have string
}

func (e *SearchAttributeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "namespace %q lacks dealsync's search attributes", e.Namespace)
	for i, m := range e.Missing {
		sep := ","
		if i == 0 {
			sep = ""
		}
		fmt.Fprintf(&b, "%s %s (%s", sep, m.Name, m.Want)
		if m.Have != "" {
			fmt.Fprintf(&b, "; registered as %s, which cannot be changed: remove it first", m.Have)
		}
		b.WriteString(")")
	}
	b.WriteString("; register them once, e.g. with the Temporal CLI:")
	for _, m := range e.Missing {
		fmt.Fprintf(&b, "\n  temporal operator search-attribute create --namespace %s --name %s --type %s", e.Namespace, m.Name, m.Want)
	}
	return b.String()
}

// CheckSearchAttributes reports a *SearchAttributeError when the namespace
// lacks one of workflows.SearchAttributeTypes (or has it with another
// type); other errors say the list could not be read.
func CheckSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("listing the search attributes of namespace %q: %w", namespace, err)
	}
	have := resp.GetCustomAttributes()
	var missing []MissingAttribute
	for name, want := range workflows.SearchAttributeTypes() {
		got, ok := have[name]
		switch {
		case !ok:
			missing = append(missing, MissingAttribute{Name: name, Want: typeName(want)})
		case got != want:
			missing = append(missing, MissingAttribute{Name: name, Want: typeName(want), Have: typeName(got)})
		}
	}
	if len(missing) == 0 {
		return nil
	}
	slices.SortFunc(missing, func(a, b MissingAttribute) int { return strings.Compare(a.Name, b.Name) })
	return &SearchAttributeError{Namespace: namespace, Missing: missing}
}

// typeName is the type as the Temporal CLI and the Web UI spell it
// (Keyword, KeywordList, Double, ...): the API's enums print that way.
func typeName(t enumspb.IndexedValueType) string { return t.String() }

// searchAttributeReadiness is the intake's extra readiness check: the
// namespace has dealsync's search attributes. It passes once for good;
// when the list cannot be read (no permission on the operator API, say)
// it does not hold readiness back.
func searchAttributeReadiness(c client.Client, namespace string) func(context.Context) error {
	var passed atomic.Bool
	return func(ctx context.Context) error {
		if passed.Load() {
			return nil
		}
		err := CheckSearchAttributes(ctx, c, namespace)
		var sae *SearchAttributeError
		if errors.As(err, &sae) {
			return err
		}
		if err == nil {
			passed.Store(true)
		}
		return nil
	}
}
