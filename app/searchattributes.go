package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc/codes"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/intake"
	"github.com/dealsync/dealsync/internal/wording"
	"github.com/dealsync/dealsync/workflows"
)

// SearchAttributeError says which of dealsync's search attributes a
// namespace lacks, or has with another type, and how to register them.
// Without them every start fails: the intake answers 5xx to every webhook.
type SearchAttributeError struct {
	Namespace string
	// Missing are sorted by name.
	Missing []MissingAttribute
	// CLIFlags are the Temporal CLI's flags that reach the frontend the
	// namespace is on (TemporalCLIFlags; "": the CLI's default), for the
	// commands the error prints.
	CLIFlags string
}

// TemporalCLIFlags are the Temporal CLI's flags that reach t's frontend as
// dealsync does: its address, its TLS files, and the API key (named, not
// given). Without them the CLI goes to its default, 127.0.0.1:7233, which
// may be a `dealsync dev` rather than the cluster.
func TemporalCLIFlags(t config.Temporal) string {
	flags := []string{"--address " + wording.ShellWord(t.Address)}
	if tls := t.TLS; usesTLS(t) {
		flags = append(flags, "--tls")
		for _, f := range []struct{ flag, value string }{{"--tls-ca-path", tls.CAFile}, {"--tls-cert-path", tls.CertFile},
			{"--tls-key-path", tls.KeyFile}, {"--tls-server-name", tls.ServerName}} {
			if f.value != "" {
				flags = append(flags, f.flag+" "+wording.ShellWord(f.value))
			}
		}
	}
	if !t.APIKey.IsZero() {
		flags = append(flags, `--api-key "$TEMPORAL_API_KEY"`)
	}
	return strings.Join(flags, " ")
}

// OnServer gives err, when it is a *SearchAttributeError, the CLI flags
// of t's frontend (TemporalCLIFlags), so that the commands it prints
// register the attributes there; other errors are returned as they are.
// The error returned is the *SearchAttributeError itself, whose text says
// all: a text wrapped around it was made before the flags were known.
func OnServer(err error, t config.Temporal) error {
	var sae *SearchAttributeError
	if !errors.As(err, &sae) {
		return err
	}
	named := *sae
	named.CLIFlags = TemporalCLIFlags(t)
	return &named
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
	flags := ""
	if e.CLIFlags != "" {
		flags = e.CLIFlags + " "
	}
	for _, m := range e.Missing {
		fmt.Fprintf(&b, "\n  temporal operator search-attribute create %s--namespace %s --name %s --type %s", flags, wording.ShellWord(e.Namespace), m.Name, m.Want)
	}
	if strings.Contains(flags, "$TEMPORAL_API_KEY") {
		b.WriteString("\n  (with TEMPORAL_API_KEY set to temporal.api_key, and a key allowed to manage the namespace)")
	}
	return b.String()
}

// ErrNoNamespace is wrapped by CheckSearchAttributes' error when the
// frontend does not know the namespace: nothing can run there.
var ErrNoNamespace = errors.New("the namespace does not exist on the Temporal frontend (temporal.namespace): create it, or fix the name")

// CheckSearchAttributes reports a *SearchAttributeError when the namespace
// lacks one of workflows.SearchAttributeTypes (or has it with another
// type), and ErrNoNamespace when there is no such namespace; other errors
// say it could not be checked. It reads the list of
// the operator API; where that API is not permitted (an API key limited to
// the namespace's workflows, say), it asks the run list instead
// (checkSearchAttributesByQuery).
func CheckSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		if code := serviceerror.ToStatus(err).Code(); code == codes.PermissionDenied || code == codes.Unimplemented {
			return checkSearchAttributesByQuery(ctx, c, namespace)
		}
		var nsMissing *serviceerror.NamespaceNotFound
		var missing *serviceerror.NotFound
		if errors.As(err, &nsMissing) || errors.As(err, &missing) {
			return fmt.Errorf("namespace %q: %w", namespace, ErrNoNamespace)
		}
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
	return missingError(namespace, missing)
}

func missingError(namespace string, missing []MissingAttribute) error {
	if len(missing) == 0 {
		return nil
	}
	slices.SortFunc(missing, func(a, b MissingAttribute) int { return strings.Compare(a.Name, b.Name) })
	return &SearchAttributeError{Namespace: namespace, Missing: missing}
}

// checkSearchAttributesByQuery checks the search attributes with the
// permission to list runs only: the frontend validates a list filter
// against the namespace's attributes, so counting the runs where each
// attribute equals a value of its type answers "invalid search attribute"
// when the namespace lacks it, and "invalid value type … of type T" when it
// has it with type T.
func checkSearchAttributesByQuery(ctx context.Context, c client.Client, namespace string) error {
	var missing []MissingAttribute
	for name, want := range workflows.SearchAttributeTypes() {
		query := fmt.Sprintf("%s = %s", name, sampleValue(want))
		_, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: namespace, Query: query})
		var invalid *serviceerror.InvalidArgument
		switch {
		case err == nil:
		case errors.As(err, &invalid):
			m := MissingAttribute{Name: name, Want: typeName(want)}
			// "... invalid value type for search attribute Amount of type Keyword: 0 (type: int64)"
			if _, rest, ok := strings.Cut(invalid.Error(), "search attribute "+name+" of type "); ok {
				m.Have, _, _ = strings.Cut(rest, ":")
				if m.Have == "" {
					m.Have = "another type"
				}
			}
			missing = append(missing, m)
		default:
			return fmt.Errorf("checking the search attributes of namespace %q (the operator API is not permitted) with the filter %s: %w", namespace, query, err)
		}
	}
	return missingError(namespace, missing)
}

// sampleValue is a list-filter literal of the type.
func sampleValue(t enumspb.IndexedValueType) string {
	switch t {
	case enumspb.INDEXED_VALUE_TYPE_DOUBLE, enumspb.INDEXED_VALUE_TYPE_INT:
		return "0"
	case enumspb.INDEXED_VALUE_TYPE_BOOL:
		return "true"
	case enumspb.INDEXED_VALUE_TYPE_DATETIME:
		return `"2000-01-01T00:00:00Z"`
	}
	return `"dealsync-check"`
}

// typeName is the type as the Temporal CLI and the Web UI spell it
// (Keyword, KeywordList, Double, ...): the API's enums print that way.
func typeName(t enumspb.IndexedValueType) string { return t.String() }

// searchAttributeReadiness is the intake's extra readiness check: the
// namespace exists, the frontend takes the intake's credentials for it
// (namespaceReadiness), and it has dealsync's search attributes. The
// attributes, once found, are not read again; the namespace and the
// credentials are, on every probe. When the attributes cannot be checked
// at all it does not hold readiness back, but a namespace the frontend
// does not know, or refuses the credentials for, does (every start would
// fail).
func searchAttributeReadiness(c client.Client, namespace string) func(context.Context) error {
	var passed atomic.Bool
	checkNamespace := namespaceReadiness(c, namespace)
	return func(ctx context.Context) error {
		// The namespace, and the credentials' use of it, on every probe: a
		// namespace deleted, or a role withdrawn, after the first success
		// fails every start from then on.
		if err := checkNamespace(ctx); err != nil {
			return err
		}
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

// namespaceReadiness is the namespace's part of searchAttributeReadiness,
// one read of it (DescribeNamespace), which the intake's Watch makes
// alone (intake.TemporalStarter.Namespace): an *intake.NamespaceError
// when the namespace does not exist or the frontend refuses the intake's
// credentials for it, nil otherwise (another failure of the read is not
// the namespace's).
func namespaceReadiness(c client.Client, namespace string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
		var nsMissing *serviceerror.NamespaceNotFound
		var missing *serviceerror.NotFound
		var denied *serviceerror.PermissionDenied
		if errors.As(err, &nsMissing) || errors.As(err, &missing) {
			return &intake.NamespaceError{Err: fmt.Errorf("namespace %q does not exist on the Temporal frontend (temporal.namespace): create it, or fix the name", namespace)}
		}
		// Credentials the frontend refuses, or that may not use the
		// namespace (a certificate or API key of another namespace): every
		// start would be refused too.
		if errors.As(err, &denied) || serviceerror.ToStatus(err).Code() == codes.Unauthenticated {
			return &intake.NamespaceError{Err: fmt.Errorf("the Temporal frontend refuses this intake's credentials for namespace %q (temporal.tls, temporal.api_key): %v", namespace, err)}
		}
		return nil
	}
}

// MinRetention is the shortest retention of finished runs dealsync expects
// of its namespace. Its guards against a second invoice read the deal's
// finished runs: a duplicate start meets a completed run, `runs retry` and
// `deals sync` skip deals whose runs made the invoice. A run gone with the
// retention leaves only the ERP's look-up by reference or idempotency key.
const MinRetention = 7 * 24 * time.Hour

// RetentionWarning reads the retention of finished runs of t's namespace
// and returns a warning when it is shorter than MinRetention ("" otherwise,
// or when it cannot be read: err). The command it suggests reaches t's
// frontend (TemporalCLIFlags), not the Temporal CLI's default address.
func RetentionWarning(ctx context.Context, c client.Client, t config.Temporal) (string, error) {
	resp, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: t.Namespace})
	if err != nil {
		return "", err
	}
	return retentionWarning(t.Namespace, TemporalCLIFlags(t), resp.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration()), nil
}

// retentionWarning is RetentionWarning's text for namespace on the
// frontend the CLI reaches with cliFlags.
func retentionWarning(namespace, cliFlags string, retention time.Duration) string {
	if retention <= 0 || retention >= MinRetention {
		return ""
	}
	if cliFlags != "" {
		cliFlags += " "
	}
	return fmt.Sprintf("namespace %q keeps finished runs for %s only: a CRM's late redelivery, `runs retry` or `deals sync` of a deal whose runs are gone starts it again, "+
		"and only the ERP's look-up (by reference, or its memory of the idempotency key) keeps it from a second invoice; "+
		"keep them 30 days or more, e.g. temporal operator namespace update %s--namespace %s --retention 30d", namespace, wording.Duration(retention), cliFlags, wording.ShellWord(namespace))
}
