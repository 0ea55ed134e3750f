package devserver

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/server/common/dynamicconfig"
	sqliteschema "go.temporal.io/server/schema/sqlite"
)

func TestVisibilityFile(t *testing.T) {
	for in, want := range map[string]string{
		"/data/temporal.db": "/data/temporal-visibility.db",
		"/data/temporal":    "/data/temporal-visibility",
		"a.b/t.sqlite":      "a.b/t-visibility.sqlite",
	} {
		if got := VisibilityFile(in); got != want {
			t.Errorf("VisibilityFile(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSearchAttributeRefreshIsForcedOnlyUntilTheDeadline(t *testing.T) {
	d := &devDynamicConfig{static: dynamicconfig.StaticClient{
		dynamicconfig.FrontendPersistenceMaxQPS.Key(): 10000,
	}}
	value := func() any {
		cvs := d.GetValue(forceSARefreshKey)
		if len(cvs) != 1 {
			t.Fatalf("GetValue(%s) = %v, want one value", forceSARefreshKey, cvs)
		}
		return cvs[0].Value
	}
	d.forceSARefreshUntil.Store(time.Now().Add(time.Hour).UnixNano())
	if v := value(); v != true {
		t.Errorf("before the deadline: %v, want true", v)
	}
	d.forceSARefreshUntil.Store(time.Now().Add(-time.Second).UnixNano())
	if v := value(); v != false {
		t.Errorf("after the deadline: %v, want false", v)
	}
	if cvs := d.GetValue(dynamicconfig.FrontendPersistenceMaxQPS.Key()); len(cvs) != 1 || cvs[0].Value != 10000 {
		t.Errorf("other keys come from the static values: got %v", cvs)
	}
}

// A new data dir keeps visibility in its own file; a data dir made before
// that split (no visibility file beside the database) keeps using the one
// file, and its runs stay listed.
func TestVisibilityStoreLayout(t *testing.T) {
	if testing.Short() {
		t.Skip("starts embedded Temporal servers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "data")
	db := filepath.Join(dir, "temporal.db")
	vis := VisibilityFile(db)

	s := startFileServer(ctx, t, db)
	// The data dir holds deals' payloads: its owner's only.
	if st, err := os.Stat(dir); err != nil {
		t.Error(err)
	} else if st.Mode().Perm() != 0o700 {
		t.Errorf("data dir %s: mode %v; want 0700", dir, st.Mode().Perm())
	}
	startRun(ctx, t, s, "first")
	waitListed(ctx, t, s, "first")
	s.Stop()
	if !fileExists(vis) {
		t.Fatalf("a new data dir has no %s", vis)
	}
	// Stopped, the runs are in the database files themselves, not left in
	// their logs: a copy of temporal.db alone has the run.
	for _, f := range []string{db, vis} {
		if st, err := os.Stat(f + "-wal"); err == nil && st.Size() > 0 {
			t.Errorf("%s-wal holds %d bytes after Stop; want it written back", f, st.Size())
		}
	}
	copied := filepath.Join(t.TempDir(), "copy.db")
	if b, err := os.ReadFile(db); err != nil || os.WriteFile(copied, b, 0o600) != nil {
		t.Fatalf("copying %s: %v", db, err)
	}
	if n := countRows(t, copied, "current_executions WHERE workflow_id = 'first'"); n != 1 {
		t.Errorf("a copy of %s alone holds %d runs of id first, want 1", db, n)
	}

	// The same data dir again: the runs are still listed.
	s = startFileServer(ctx, t, db)
	waitListed(ctx, t, s, "first")
	// A filter on a column whose index was dropped still answers (by a
	// scan): the run list's other filters keep working.
	c := dial(ctx, t, s)
	if err := c.TerminateWorkflow(ctx, "first", "", "done"); err != nil {
		t.Fatal(err)
	}
	waitListedBy(ctx, t, s, "first", "WorkflowId = 'first' AND ExecutionStatus = 'Terminated' AND HistoryLength > 0")
	s.Stop()

	// A legacy data dir: only the database file.
	for _, f := range []string{vis, vis + "-wal", vis + "-shm"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	s = startFileServer(ctx, t, db)
	defer s.Stop()
	startRun(ctx, t, s, "legacy")
	waitListed(ctx, t, s, "legacy")
	if fileExists(vis) {
		t.Errorf("a legacy data dir got a separate visibility file %s", vis)
	}
}

func startFileServer(ctx context.Context, t *testing.T, db string) *Server {
	t.Helper()
	s, err := Start(ctx, Options{
		DatabaseFile:     db,
		UIPort:           -1,
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
		LogLevel:         slog.LevelError,
		SearchAttributes: map[string]enumspb.IndexedValueType{"DealId": enumspb.INDEXED_VALUE_TYPE_KEYWORD},
	})
	if err != nil {
		t.Fatalf("starting the server on %s: %v", db, err)
	}
	return s
}

func dial(ctx context.Context, t *testing.T, s *Server) client.Client {
	t.Helper()
	c, err := client.DialContext(ctx, client.Options{HostPort: s.FrontendAddress(), Namespace: s.Namespace(), Logger: quietSDKLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// startRun starts a run no worker serves: it stays running and listed.
func startRun(ctx context.Context, t *testing.T, s *Server, id string) {
	t.Helper()
	_, err := dial(ctx, t, s).ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: "nobody"}, "Nothing")
	if err != nil {
		t.Fatalf("starting %s: %v", id, err)
	}
}

// waitListed waits until visibility lists the run (it is written
// asynchronously), bounded by ctx.
func waitListed(ctx context.Context, t *testing.T, s *Server, id string) {
	t.Helper()
	waitListedBy(ctx, t, s, id, "WorkflowId = '"+id+"'")
}

// waitListedBy waits until the run list filtered by query holds exactly
// the run id.
func waitListedBy(ctx context.Context, t *testing.T, s *Server, id, query string) {
	t.Helper()
	c := dial(ctx, t, s)
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		if err == nil && len(resp.GetExecutions()) == 1 && resp.GetExecutions()[0].GetExecution().GetWorkflowId() == id {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("run %s never listed by %q (last error %v)", id, query, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// A search attribute added to an existing database is usable at once: the
// services' caches of the attributes are refreshed from the database until
// every cache loaded before the addition has expired.
func TestSearchAttributeAddedToAnExistingDatabaseIsUsableAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts embedded Temporal servers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := filepath.Join(t.TempDir(), "temporal.db")
	s := startFileServer(ctx, t, db)
	startRun(ctx, t, s, "before")
	s.Stop()

	s, err := Start(ctx, Options{
		DatabaseFile: db, UIPort: -1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), LogLevel: slog.LevelError,
		SearchAttributes: map[string]enumspb.IndexedValueType{
			"DealId":     enumspb.INDEXED_VALUE_TYPE_KEYWORD,
			"SyncStatus": enumspb.INDEXED_VALUE_TYPE_KEYWORD, // new
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	c := dial(ctx, t, s)
	syncStatus := temporal.NewSearchAttributeKeyKeyword("SyncStatus")
	_, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: "after", TaskQueue: "nobody",
		TypedSearchAttributes: temporal.NewSearchAttributes(syncStatus.ValueSet("pending")),
	}, "Nothing")
	if err != nil {
		t.Fatalf("starting a run with the new search attribute right after start-up: %v", err)
	}
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: `SyncStatus = "pending"`})
		if err == nil && len(resp.GetExecutions()) == 1 && resp.GetExecutions()[0].GetExecution().GetWorkflowId() == "after" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the run was never found by its new search attribute (last error %v)", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// A frontend port taken by another process is an error that says so, not
// a crash (the server's frontend panics on a listener that failed to bind).
func TestTakenFrontendPortIsAnError(t *testing.T) {
	if testing.Short() {
		t.Skip("starts embedded Temporal servers")
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, Options{FrontendPort: port, UIPort: -1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), LogLevel: slog.LevelError})
	if err == nil {
		s.Stop()
		t.Fatalf("started on a taken port %d", port)
	}
	t.Logf("error: %v", err)
	if !strings.Contains(err.Error(), fmt.Sprintf("frontend port %d (dev.frontend_port, env DEALSYNC_DEV_FRONTEND_PORT) is not free", port)) {
		t.Errorf("the error does not name the port: %v", err)
	}
}

// The unused visibility indexes all exist in the server's schema (a
// renamed one would otherwise be kept unnoticed after an upgrade), are
// dropped, and dropping them again is harmless; the indexes dealsync's
// queries use stay.
func TestDropUnusedVisibilityIndexes(t *testing.T) {
	file := filepath.Join(t.TempDir(), "visibility.db")
	if err := sqliteschema.SetupSchema(fileSQLConfig(file)); err != nil {
		t.Fatal(err)
	}
	before := visibilityIndexes(t, file)
	for _, name := range unusedVisibilityIndexes {
		if !before[name] {
			t.Errorf("the server's visibility schema has no index %s", name)
		}
	}
	for range 2 {
		if err := dropUnusedVisibilityIndexes(file); err != nil {
			t.Fatal(err)
		}
	}
	after := visibilityIndexes(t, file)
	for _, name := range unusedVisibilityIndexes {
		if after[name] {
			t.Errorf("index %s is still there", name)
		}
	}
	for _, name := range []string{"default_idx", "by_workflow_id", "by_status", "by_task_queue", "by_temporal_namespace_division", "by_keyword_01", "by_keyword_10", "by_double_01", "by_bool_01"} {
		if !after[name] {
			t.Errorf("index %s was dropped", name)
		}
	}
	if got, want := len(after), len(before)-len(unusedVisibilityIndexes); got != want {
		t.Errorf("%d indexes left, want %d", got, want)
	}
}

func visibilityIndexes(t *testing.T, file string) map[string]bool {
	t.Helper()
	db, err := sql.Open("sqlite", file)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'executions_visibility' AND sql IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	names := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		names[name] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// A Web UI port taken by another process is an error naming it: the UI's
// server exits the whole process when it cannot bind (its logger's Fatal),
// which took the worker, the intake and the sandbox down with it.
func TestTakenUIPortIsAnError(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded Temporal server")
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, Options{UIPort: port, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), LogLevel: slog.LevelError})
	if err == nil {
		s.Stop()
		t.Fatalf("started with the Web UI on a taken port %d", port)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("web UI port %d (dev.ui_port, env DEALSYNC_DEV_UI_PORT) is not free", port)) {
		t.Errorf("the error does not name the port: %v", err)
	}
}

// The Web UI's port is checked again once the server has started: a given
// port taken meanwhile is an error naming it, a picked one is replaced by a
// free one, and a free one is kept.
func TestUIPortTakenWhileTheServerStarted(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	if _, err := uiPortStillFree("127.0.0.1", port, true); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("web UI port %d (dev.ui_port, env DEALSYNC_DEV_UI_PORT) was taken", port)) {
		t.Errorf("a given port taken: %v", err)
	}
	picked, err := uiPortStillFree("127.0.0.1", port, false)
	if err != nil || picked == port || picked <= 0 {
		t.Fatalf("a picked port taken: got %d, %v", picked, err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(picked)))
	if err != nil {
		t.Fatalf("the port picked instead is not free: %v", err)
	}
	_ = l.Close()
	if got, err := uiPortStillFree("127.0.0.1", picked, true); err != nil || got != picked {
		t.Errorf("a free given port: got %d, %v", got, err)
	}
}

// A given Web UI port that another process takes while the Temporal
// server starts is an error naming it, from Start: the UI's server would
// have exited the whole process.
func TestUIPortTakenWhileTheServerStartsIsAnError(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded Temporal server")
	}
	ports, err := FreePorts("127.0.0.1", 1)
	if err != nil {
		t.Fatal(err)
	}
	port := ports[0]
	var taken net.Listener
	afterTemporalStart = func() {
		if taken, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err != nil {
			t.Errorf("taking the UI's port: %v", err)
		}
	}
	defer func() {
		afterTemporalStart = nil
		if taken != nil {
			taken.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, Options{UIPort: port, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), LogLevel: slog.LevelError})
	if err == nil {
		s.Stop()
		t.Fatalf("started with the Web UI on port %d, taken while the server started", port)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("web UI port %d (dev.ui_port, env DEALSYNC_DEV_UI_PORT) was taken while the server started", port)) {
		t.Errorf("the error does not name the port: %v", err)
	}
}

// One port for both the Web UI and the frontend is an error naming both
// keys, before anything binds: each port is free alone, and the UI's
// server would exit the process when the frontend took it.
func TestSameUIAndFrontendPortIsAnError(t *testing.T) {
	free, err := FreePorts("127.0.0.1", 1)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(context.Background(), Options{UIPort: free[0], FrontendPort: free[0], Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), LogLevel: slog.LevelError})
	if err == nil {
		s.Stop()
		t.Fatal("started with the Web UI and the frontend on one port")
	}
	if !strings.Contains(err.Error(), "dev.ui_port") || !strings.Contains(err.Error(), "dev.frontend_port") {
		t.Errorf("the error does not name both keys: %v", err)
	}
}

// countRows counts the rows of table (with a WHERE clause, if any) in
// the SQLite file.
func countRows(t *testing.T, file, table string) int {
	t.Helper()
	db, err := sql.Open("sqlite", file)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatalf("counting %s in %s: %v", table, file, err)
	}
	return n
}

// A data dir whose path has a #, ? or % (which the SQLite driver reads as
// a URI's) is refused, naming it, instead of a database made elsewhere.
func TestDataDirWithURICharactersIsRefused(t *testing.T) {
	for _, name := range []string{"x#1", "x?1", "x%41"} {
		db := filepath.Join(t.TempDir(), name, "temporal.db")
		_, err := Start(context.Background(), Options{DatabaseFile: db, UIPort: -1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "#, ? or %") {
			t.Errorf("data dir %s: %v; want a refusal naming it", name, err)
		}
	}
}

// The Web UI does not offer "Start Workflow Like This One" (a run
// without dealsync's memo, with the old run's search attributes and the
// deal's idempotency keys), nor fetch a news feed from the internet with
// the cluster's id on every page.
func TestWebUIOffersNoStartWorkflowAndFetchesNoNews(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx, Options{UIPort: 0, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), LogLevel: slog.LevelError})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	var settings struct{ StartWorkflowDisabled, DisableNewsFetch bool }
	for {
		resp, err := http.Get("http://" + s.UIAddress() + "/api/v1/settings")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&settings)
			resp.Body.Close()
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the Web UI's settings: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !settings.StartWorkflowDisabled || !settings.DisableNewsFetch {
		t.Errorf("settings %+v; want start workflow and the news feed off", settings)
	}
}

// The Web UI's own server (on its internal port, without the proxy in
// front) and the frontend's HTTP API refuse an API request for another
// Host: a web page that rebinds its name to 127.0.0.1 and tries ports
// until it finds theirs gets none of the runs.
func TestUIBackendAndFrontendHTTPAPIRefuseAnotherHost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx, Options{UIPort: 0, AllowedHosts: []string{"MyLaptop.test."}, Logger: slog.New(slog.DiscardHandler), LogLevel: slog.LevelError})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	get := func(addr, host string) (int, string) {
		t.Helper()
		for {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/v1/namespaces/default/workflows", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = host
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return resp.StatusCode, string(body)
			}
			// The UI's server starts in a goroutine.
			if ctx.Err() != nil {
				t.Fatalf("GET %s: %v", addr, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	port := func(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
	for _, c := range []struct {
		what, addr        string
		refused, answered []string
	}{
		{"the UI's own server", s.uiBackend,
			[]string{"evil.example", "evil.example:" + port(s.uiBackend), "localhost.evil.example", "127.0.0.1.evil.example:80"},
			[]string{s.uiBackend, "localhost", "[::1]:8233", "mylaptop.test:8233"}},
		{"the frontend's HTTP API", s.frontendHTTP,
			[]string{"evil.example", "evil.example:" + port(s.frontendHTTP), "localhost.evil.example:80", "127.0.0.1.evil.example:80", "mylaptop.test:8233"},
			[]string{s.frontendHTTP, "localhost:" + port(s.frontendHTTP)}},
	} {
		for _, host := range c.refused {
			if code, body := get(c.addr, host); code != http.StatusForbidden {
				t.Errorf("%s for Host %s: %d %.200q; want 403", c.what, host, code, body)
			}
		}
		for _, host := range c.answered {
			if code, body := get(c.addr, host); code != http.StatusOK {
				t.Errorf("%s for Host %s: %d %.200q; want 200", c.what, host, code, body)
			}
		}
	}
}

// The Web UI's proxy logs no warning for a request its browser gave up
// (a long poll of a page left), and answers 502, with a warning, one
// Temporal's UI server did not answer.
func TestUIProxyLogsNoWarningForARequestGivenUp(t *testing.T) {
	polled := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(polled)
		<-r.Context().Done()
	}))
	defer backend.Close()
	var logs bytes.Buffer
	o := Options{IP: "127.0.0.1", Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	proxyTo := func(backend string) (*http.Server, string) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return uiProxy(l, backend, o), "http://" + l.Addr().String()
	}
	srv, url := proxyTo(strings.TrimPrefix(backend.URL, "http://"))
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/v1/namespaces/default/workflows/w/history?waitNewEvent=true", nil)
	go func() { <-polled; cancel() }()
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.Canceled) {
		t.Fatalf("the given-up request: %v", err)
	}
	// Shutdown waits for the proxy's handler to return.
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if logs.Len() != 0 {
		t.Errorf("logs for a request given up: %s", logs.String())
	}

	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down.Close()
	srv, url = proxyTo(down.Addr().String())
	defer srv.Close()
	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "Temporal's UI server did not answer") {
		t.Errorf("UI server down: %d %q, want 502 saying so", resp.StatusCode, body)
	}
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "did not answer") {
		t.Errorf("logs for the UI server down: %q; want a warning", logs.String())
	}
}
