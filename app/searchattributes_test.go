package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/devserver"
	"github.com/dealsync/dealsync/intake"
	"github.com/dealsync/dealsync/internal/testlog"
	"github.com/dealsync/dealsync/secret"
	"github.com/dealsync/dealsync/workflows"
)

// The types are spelled as `temporal operator search-attribute create
// --type` takes them.
func TestSearchAttributeTypeNames(t *testing.T) {
	for typ, want := range map[enumspb.IndexedValueType]string{
		enumspb.INDEXED_VALUE_TYPE_KEYWORD:      "Keyword",
		enumspb.INDEXED_VALUE_TYPE_DOUBLE:       "Double",
		enumspb.INDEXED_VALUE_TYPE_BOOL:         "Bool",
		enumspb.INDEXED_VALUE_TYPE_DATETIME:     "Datetime",
		enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST: "KeywordList",
		enumspb.INDEXED_VALUE_TYPE_TEXT:         "Text",
		enumspb.INDEXED_VALUE_TYPE_INT:          "Int",
	} {
		if got := typeName(typ); got != want {
			t.Errorf("%v: %q, want %q", typ, got, want)
		}
	}
	err := &SearchAttributeError{Namespace: "sales", Missing: []MissingAttribute{
		{Name: "Amount", Want: "Double", Have: "Keyword"}, {Name: "DealId", Want: "Keyword"},
	}}
	msg := err.Error()
	for _, want := range []string{
		`namespace "sales" lacks dealsync's search attributes Amount (Double; registered as Keyword`,
		", DealId (Keyword)",
		"\n  temporal operator search-attribute create --namespace sales --name Amount --type Double",
		"\n  temporal operator search-attribute create --namespace sales --name DealId --type Keyword",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
}

// denyOperatorAPI is a client option that answers every call of the
// operator API with PermissionDenied, as a server does for an API key
// limited to a namespace's workflows.
func denyOperatorAPI() grpc.DialOption {
	return grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if strings.HasPrefix(method, "/temporal.api.operatorservice.v1.OperatorService/") {
			return status.Error(codes.PermissionDenied, "Request unauthorized.")
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	})
}

// Without the operator API, the search attributes are checked through the
// run list's filter validation, with the same verdicts: all there; one
// registered with another type (named); all missing.
func TestCheckSearchAttributesWithoutTheOperatorAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded Temporal server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	wrongAmount := workflows.SearchAttributeTypes()
	wrongAmount["Amount"] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	for _, c := range []struct {
		name    string
		attrs   map[string]enumspb.IndexedValueType
		missing []MissingAttribute
	}{
		{"all registered", workflows.SearchAttributeTypes(), nil},
		{"Amount as a Keyword", wrongAmount, []MissingAttribute{{Name: "Amount", Want: "Double", Have: "Keyword"}}},
		{"none", nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, err := devserver.Start(ctx, devserver.Options{UIPort: -1, SearchAttributes: c.attrs})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Stop()
			cl, err := client.DialContext(ctx, client.Options{
				HostPort: srv.FrontendAddress(), Logger: log.NewStructuredLogger(slog.New(slog.DiscardHandler)),
				ConnectionOptions: client.ConnectionOptions{DialOptions: []grpc.DialOption{denyOperatorAPI()}},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if _, err := cl.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: "default"}); err == nil {
				t.Fatal("the operator API answered: the test does not test the fallback")
			}
			err = CheckSearchAttributes(ctx, cl, "default")
			var sae *SearchAttributeError
			switch {
			case c.attrs == nil:
				if !errors.As(err, &sae) || len(sae.Missing) != len(workflows.SearchAttributeTypes()) {
					t.Fatalf("want every attribute missing, got %v", err)
				}
				// The types as the Temporal CLI names them, written out.
				want := map[string]string{
					"DealId": "Keyword", "Connection": "Keyword", "Amount": "Double", "Currency": "Keyword",
					"ErpInvoiceId": "Keyword", "SyncStatus": "Keyword", "CrmAccount": "Keyword", "ChangedAfterInvoice": "Bool",
				}
				for _, m := range sae.Missing {
					if w, ok := want[m.Name]; !ok || m.Have != "" || m.Want != w {
						t.Errorf("missing %+v, want type %q", m, w)
					}
				}
			case c.missing == nil:
				if err != nil {
					t.Fatalf("want no error, got %v", err)
				}
			default:
				if !errors.As(err, &sae) || !slices.Equal(sae.Missing, c.missing) {
					t.Fatalf("want %+v, got %v", c.missing, err)
				}
			}
		})
	}
}

// The intake is not ready on a namespace the frontend does not know (a
// typo in temporal.namespace): every start would fail. It was, because the
// attributes of such a namespace "cannot be checked".
func TestReadinessNeedsTheNamespace(t *testing.T) {
	ctx, srv := embeddedServer(t)
	cl, err := client.DialContext(ctx, client.Options{HostPort: srv.FrontendAddress(), Logger: log.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := searchAttributeReadiness(cl, "prod-typo")(ctx); err == nil || !strings.Contains(err.Error(), `namespace "prod-typo" does not exist`) {
		t.Fatalf("readiness on a missing namespace: %v", err)
	}
	if err := searchAttributeReadiness(cl, "default")(ctx); err != nil {
		t.Fatalf("readiness on the namespace: %v", err)
	}
	// The worker's check says so too: it stops there, not "could not check".
	if err := CheckSearchAttributes(ctx, cl, "prod-typo"); !errors.Is(err, ErrNoNamespace) || !strings.Contains(err.Error(), `namespace "prod-typo": the namespace does not exist`) {
		t.Errorf("the search attributes of a missing namespace: %v, want ErrNoNamespace", err)
	}

	// An intake on that namespace, which nothing probes, logs its
	// problem (its frontend answers), and its end once the namespace is
	// created.
	var logged testlog.Buffer
	h := intake.New(intake.Options{Connections: noConnections{}, Logger: slog.New(slog.NewTextHandler(&logged, nil)),
		Starter: Starter(&config.Config{Temporal: config.Temporal{Namespace: "prod-typo", TaskQueue: "dealsync"}}, cl, false)})
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); h.Watch(wctx, time.Millisecond) }()
	defer func() { stop(); <-done }()
	waitLogged(t, &logged, `level=WARN msg="not ready: the Temporal namespace cannot be used`)
	waitLogged(t, &logged, `error="namespace \"prod-typo\" does not exist on the Temporal frontend (temporal.namespace): create it, or fix the name"`)
	if _, err := cl.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{Namespace: "prod-typo", WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	waitLogged(t, &logged, `level=INFO msg="ready: the Temporal namespace can be used again"`)
	if out := logged.String(); strings.Count(out, "not ready: the Temporal namespace cannot be used") != 1 || strings.Contains(out, `msg="not ready: the Temporal frontend`) || strings.Contains(out, "frontend answers again") {
		t.Errorf("one namespace problem, the frontend answering: want one warning and no line of the frontend:\n%s", out)
	}
}

// The commands a missing attribute's error prints reach the frontend
// dealsync uses (the CLI's default is 127.0.0.1:7233, perhaps a dealsync
// dev), with its TLS files and, named, its API key.
func TestSearchAttributeCommandsNameTheServer(t *testing.T) {
	err := OnServer(fmt.Errorf("starting: %w", &SearchAttributeError{Namespace: "prod", Missing: []MissingAttribute{{Name: "DealId", Want: "Keyword"}}}),
		config.Temporal{Address: "temporal.internal:7233", TLS: config.TLS{CAFile: "/etc/ca dir/ca.pem", ServerName: "temporal.internal"}, APIKey: secret.New("k")})
	want := `temporal operator search-attribute create --address temporal.internal:7233 --tls --tls-ca-path '/etc/ca dir/ca.pem' --tls-server-name temporal.internal --api-key "$TEMPORAL_API_KEY" --namespace prod --name DealId --type Keyword`
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "TEMPORAL_API_KEY set to temporal.api_key") {
		t.Errorf("got:\n%v\nwant the command:\n%s", err, want)
	}
	if plain := OnServer(errors.New("other"), config.Temporal{Address: "x:1"}); plain.Error() != "other" {
		t.Errorf("another error changed: %v", plain)
	}
}

// deniedService refuses every call as the frontend refuses credentials
// that may not use the namespace (or none it knows).
type deniedService struct {
	workflowservice.WorkflowServiceClient
	err error
}

func (d deniedService) DescribeNamespace(context.Context, *workflowservice.DescribeNamespaceRequest, ...grpc.CallOption) (*workflowservice.DescribeNamespaceResponse, error) {
	return nil, d.err
}

type deniedClient struct {
	client.Client
	svc deniedService
}

func (d deniedClient) WorkflowService() workflowservice.WorkflowServiceClient { return d.svc }

// The intake is not ready when the frontend refuses its credentials for
// the namespace (a certificate or API key of another namespace): every
// start would be refused too. It said ready, as the attributes "could
// not be checked".
func TestReadinessNeedsCredentialsTheNamespaceTakes(t *testing.T) {
	for _, err := range []error{
		serviceerror.NewPermissionDenied("Request unauthorized.", ""),
		status.Error(codes.Unauthenticated, "invalid API key"),
	} {
		got := searchAttributeReadiness(deniedClient{svc: deniedService{err: err}}, "prod")(context.Background())
		if got == nil || !strings.Contains(got.Error(), `refuses this intake's credentials for namespace "prod"`) {
			t.Errorf("%v: readiness %v, want not ready naming the credentials", err, got)
		}
	}
}

// flakyNamespace answers DescribeNamespace from its err field, which a
// test changes between probes; the attributes are all there.
type flakyNamespace struct {
	deniedService
	err *error
}

func (f flakyNamespace) DescribeNamespace(context.Context, *workflowservice.DescribeNamespaceRequest, ...grpc.CallOption) (*workflowservice.DescribeNamespaceResponse, error) {
	return &workflowservice.DescribeNamespaceResponse{}, *f.err
}

// Readiness asks about the namespace and the credentials on every probe,
// not only until the first success: a role withdrawn (or the namespace
// deleted) later fails every start, and the replica must say so.
func TestReadinessRechecksTheNamespace(t *testing.T) {
	var err error
	c := flakyClient{svc: flakyNamespace{err: &err}}
	ready := searchAttributeReadiness(c, "prod")
	if got := ready(context.Background()); got != nil {
		t.Fatalf("first probe: %v", got)
	}
	err = serviceerror.NewPermissionDenied("Request unauthorized.", "")
	if got := ready(context.Background()); got == nil || !strings.Contains(got.Error(), "refuses this intake's credentials") {
		t.Errorf("a role withdrawn after the first success: readiness %v, want not ready", got)
	}
	err = serviceerror.NewNamespaceNotFound("prod")
	if got := ready(context.Background()); got == nil || !strings.Contains(got.Error(), `namespace "prod" does not exist`) {
		t.Errorf("the namespace deleted after the first success: readiness %v, want not ready", got)
	}
}

// flakyClient passes the attribute check: every attribute is registered.
type flakyClient struct {
	client.Client
	svc flakyNamespace
}

func (f flakyClient) WorkflowService() workflowservice.WorkflowServiceClient { return f.svc }

func (f flakyClient) OperatorService() operatorservice.OperatorServiceClient { return allAttributes{} }

// allAttributes lists every search attribute dealsync needs.
type allAttributes struct {
	operatorservice.OperatorServiceClient
}

func (allAttributes) ListSearchAttributes(context.Context, *operatorservice.ListSearchAttributesRequest, ...grpc.CallOption) (*operatorservice.ListSearchAttributesResponse, error) {
	return &operatorservice.ListSearchAttributesResponse{CustomAttributes: workflows.SearchAttributeTypes()}, nil
}

// embeddedServer starts an embedded Temporal server with dealsync's
// search attributes for the test (skipped with -short), stopped when it
// ends, and a context bounding the test's calls to it.
func embeddedServer(t *testing.T) (context.Context, *devserver.Server) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts an embedded Temporal server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	srv, err := devserver.Start(ctx, devserver.Options{UIPort: -1, SearchAttributes: workflows.SearchAttributeTypes()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return ctx, srv
}
