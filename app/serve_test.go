package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dealsync/dealsync/connections"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/intake"
	"github.com/dealsync/dealsync/model"
)

// A client that sends a request's headers and then trickles (here: stops
// sending) its body is cut off once the read timeout has passed, instead of
// holding its connection for as long as it likes; a whole request is
// served as usual.
func TestServeCutsOffARequestThatNeverArrives(t *testing.T) {
	old := readTimeout
	readTimeout = 300 * time.Millisecond
	t.Cleanup(func() { readTimeout = old })

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				return // the read timed out
			}
			fmt.Fprintf(w, "%d bytes", len(b))
		}))
	}()
	t.Cleanup(func() { cancel(); <-done })

	resp, err := http.Post("http://"+l.Addr().String(), "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a whole request: %d", resp.StatusCode)
	}

	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly a little"); err != nil {
		t.Fatal(err)
	}
	// Generous: the point is that the server ends it, not how fast.
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server kept the connection of a body that never came")
	}
}

type noConnections struct{}

func (noConnections) Get(string) (*connections.Connection, bool) { return nil, false }

type readyStarter struct{}

func (readyStarter) Start(context.Context, *connections.Connection, model.DealEvent) (connectors.EventResult, error) {
	return connectors.EventResult{}, nil
}

func (readyStarter) Notify(context.Context, *connections.Connection, model.DealEvent) (connectors.EventResult, bool, error) {
	return connectors.EventResult{}, false, nil
}

func (readyStarter) Ready(context.Context) error { return nil }

// A stopping intake first fails /readyz while it still serves, for the
// drain delay, so that its load balancer sends it nothing more before its
// listener closes; then it stops.
func TestServeIntakeFailsReadyzBeforeItStopsListening(t *testing.T) {
	sleeping, release := make(chan time.Duration, 1), make(chan struct{})
	old := drainSleep
	drainSleep = func(d time.Duration) { sleeping <- d; <-release }
	t.Cleanup(func() { drainSleep = old })

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + l.Addr().String()
	h := intake.New(intake.Options{Connections: noConnections{}, Starter: readyStarter{}, Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// Read once ServeIntake has returned (stop waits for it): no lock.
	var logs bytes.Buffer
	go func() { done <- ServeIntake(ctx, l, h, 7*time.Second, slog.New(slog.NewTextHandler(&logs, nil))) }()
	var serveErr error
	stop := sync.OnceFunc(func() { cancel(); close(release); serveErr = <-done })
	t.Cleanup(stop)

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != http.StatusOK {
		t.Fatalf("before the stop: /readyz %d %s", code, body)
	}
	cancel()
	select {
	case d := <-sleeping:
		if d != 7*time.Second {
			t.Fatalf("drained for %v, want the configured 7s", d)
		}
	case err := <-done:
		done <- err // for the cleanup
		t.Fatalf("stopped without draining: %v", err)
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "draining") {
		t.Fatalf("while draining: /readyz %d %s, want 503 draining", code, body)
	}
	if code, body := get("/healthz"); code != http.StatusOK {
		t.Fatalf("while draining the listener must still serve: /healthz %d %s", code, body)
	}
	stop()
	if serveErr != nil {
		t.Fatalf("stop: %v", serveErr)
	}
	if c, err := net.Dial("tcp", l.Addr().String()); err == nil {
		c.Close()
		t.Fatal("still listening after the drain")
	}
	// Each stage of the stop is logged, to its end.
	for _, want := range []string{"intake draining", "intake closing", "intake stopped"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}
