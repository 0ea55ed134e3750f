package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// `dealsync probe` is the healthcheck of docker-compose.yml's intake and
// workers (the image has no shell nor curl): exit 0 on a 2xx answer, with
// the status and body; 1 on any other, saying why; 2 for a URL that is
// not http(s).
func TestProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, "/healthz", http.StatusFound)
		case "/readyz":
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"the Temporal frontend does not answer (the intake's log says why)","status":"unavailable"}` + "\n"))
		default:
			_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	if out, err := runOut(ctx, "probe", srv.URL+"/healthz"); err != nil || strings.TrimSpace(out) != `200 OK {"status":"ok"}` {
		t.Errorf("a 200: %q, %v", out, err)
	}
	if _, err := runOut(ctx, "probe", srv.URL+"/readyz"); exitCode(err) != 1 ||
		!strings.Contains(err.Error(), `503 Service Unavailable {"error":"the Temporal frontend does not answer (the intake's log says why)","status":"unavailable"}`) {
		t.Errorf("a 503: exit %d, %v", exitCode(err), err)
	}
	// A redirect is not followed (it was, to a 200 here): a 3xx is not
	// ready.
	if out, err := runOut(ctx, "probe", srv.URL+"/moved"); exitCode(err) != 1 ||
		!strings.Contains(err.Error(), "302 Found") || !strings.Contains(err.Error(), "redirected to /healthz: not followed") {
		t.Errorf("a 302: exit %d, %q, %v; want 1, saying 302 and where to", exitCode(err), out, err)
	}
	addr := srv.Listener.Addr().String()
	srv.Close()
	if _, err := runOut(ctx, "probe", "http://"+addr+"/readyz"); exitCode(err) != 1 || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("nothing listening: exit %d, %v", exitCode(err), err)
	}
	for _, bad := range []string{"127.0.0.1:8080/readyz", "ftp://127.0.0.1/readyz"} {
		if _, err := runOut(ctx, "probe", bad); exitCode(err) != 2 {
			t.Errorf("%s: exit %d, %v; want 2", bad, exitCode(err), err)
		}
	}
}
