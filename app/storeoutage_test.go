package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dealsync/dealsync/devserver"
	"github.com/dealsync/dealsync/intake"
	"github.com/dealsync/dealsync/internal/testpg"
	"github.com/dealsync/dealsync/workflows"
)

// tcpGate forwards connections to a server until it is closed (every
// connection cut, new ones refused), and again once opened: a database
// that stops and comes back, on the same address.
type tcpGate struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
}

func newTCPGate(t *testing.T, target string) *tcpGate {
	g := &tcpGate{t: t, target: target, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.addr = ln.Addr().String()
	g.serve(ln)
	t.Cleanup(g.close)
	return g
}

func (g *tcpGate) serve(ln net.Listener) {
	g.mu.Lock()
	g.ln = ln
	g.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", g.target)
			if err != nil {
				c.Close()
				continue
			}
			g.mu.Lock()
			if g.ln != ln {
				g.mu.Unlock()
				c.Close()
				s.Close()
				return
			}
			g.conns[c], g.conns[s] = true, true
			g.mu.Unlock()
			go func() { _, _ = io.Copy(s, c); s.Close() }()
			go func() { _, _ = io.Copy(c, s); c.Close() }()
		}
	}()
}

// close refuses new connections and cuts every open one.
func (g *tcpGate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln != nil {
		g.ln.Close()
		g.ln = nil
	}
	for c := range g.conns {
		c.Close()
	}
	clear(g.conns)
}

// reopen listens again on the same address, unless it listens.
func (g *tcpGate) reopen() {
	g.mu.Lock()
	open := g.ln != nil
	g.mu.Unlock()
	if open {
		return
	}
	ln, err := net.Listen("tcp", g.addr)
	if err != nil {
		g.t.Fatal(err)
	}
	g.serve(ln)
}

// The store probe on a PostgreSQL-backed server whose database stops
// (every connection to it cut, new ones refused) and comes back: a
// StoreError while it is down (the frontend answers; the read, and a
// start, get no answer in time: the SDK retries the server's Unavailable)
// that says the server's last answer, and nil again once it is back. It
// needs a PostgreSQL server (internal/testpg), and skips without one.
func TestStoreProbeWhileThePostgresStoreIsDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded Temporal server")
	}
	pg := testpg.Postgres(t)
	gate := newTCPGate(t, pg.Addr)
	pg.Addr = gate.addr
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{UIPort: -1, Postgres: pg, SearchAttributes: workflows.SearchAttributeTypes()})
	if err != nil {
		_ = pg.Drop()
		t.Fatal(err)
	}
	defer func() {
		srv.Stop()
		gate.reopen()
		if err := pg.Drop(); err != nil {
			t.Errorf("cleaning up: %v", err)
		}
	}()
	cl, err := client.Dial(client.Options{HostPort: srv.FrontendAddress(), Logger: log.NewStructuredLogger(slog.New(slog.DiscardHandler)),
		ConnectionOptions: client.ConnectionOptions{DialOptions: []grpc.DialOption{intake.StartProbeInterceptor()}}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	probe := func() error {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		defer pcancel()
		return intake.StoreProbe(cl)(pctx)
	}
	if err := probe(); err != nil {
		t.Fatalf("the store probe with the database up: %v", err)
	}
	gate.close()
	var se *intake.StoreError
	// The server answers the SDK's attempts at once (its connections to
	// the database refused), and the StoreError says its last answer.
	if err := probe(); !errors.As(err, &se) || !strings.Contains(err.Error(), "Temporal's last answer: ") {
		t.Errorf("the store probe with the database down: %v, want a StoreError saying Temporal's last answer", err)
	} else {
		t.Logf("the database down: %v", err)
	}
	gate.reopen()
	for {
		err := probe()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the store probe with the database back: %v until the test's end", err)
		}
		time.Sleep(time.Second)
	}
}

// The store probe through the SDK's retries of a server that answers
// Unavailable (as it does while SQLite's disk is full, "shard status
// unknown", until the read's deadline): a StoreError that says that
// answer, which the SDK's own error ("context deadline exceeded") does
// not.
func TestStoreProbeSaysTheServersLastAnswer(t *testing.T) {
	ctx, srv := embeddedServer(t)
	full := grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if strings.HasSuffix(method, "/DescribeWorkflowExecution") {
			return status.Error(codes.Unavailable, "GetWorkflowExecution operation failed. Error: database or disk is full (13)")
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	})
	cl, err := client.Dial(client.Options{HostPort: srv.FrontendAddress(), Logger: log.NewStructuredLogger(slog.New(slog.DiscardHandler)),
		ConnectionOptions: client.ConnectionOptions{DialOptions: []grpc.DialOption{intake.StartProbeInterceptor(), full}}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	defer pcancel()
	err = intake.StoreProbe(cl)(pctx)
	var se *intake.StoreError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "database or disk is full") {
		t.Errorf("the store probe: %v, want a StoreError saying the server's answer", err)
	}
}
