package intake_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connections"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/generic"
	"github.com/dealsync/dealsync/intake"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/secret"
)

// benchStarter records nothing and answers at once: what is left is the
// intake's own cost (routing, body, signature, parsing, trigger, reply,
// access log).
type benchStarter struct{}

func (benchStarter) Start(_ context.Context, conn *connections.Connection, ev model.DealEvent) (connectors.EventResult, error) {
	return connectors.EventResult{EventID: ev.EventID, DealID: ev.Deal.ID, WorkflowID: "invoice/" + conn.Name + "/" + ev.Deal.ID, RunID: "0195f3c2-7d1e-7c55-9d0e-6f1a3c2b7d10"}, nil
}

func (benchStarter) Notify(_ context.Context, _ *connections.Connection, ev model.DealEvent) (connectors.EventResult, bool, error) {
	return connectors.EventResult{EventID: ev.EventID, DealID: ev.Deal.ID}, false, nil
}

func (benchStarter) Ready(context.Context) error { return nil }

type benchConnections map[string]*connections.Connection

func (c benchConnections) Get(name string) (*connections.Connection, bool) {
	conn, ok := c[name]
	return conn, ok
}

const benchEvent = `{"event_id":"evt_%[1]d","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"D-%[1]d","name":"Acme annual","stage":"closed_won","previous_stage":"negotiation","amount":"12000.00","currency":"EUR","close_date":"2026-11-20","owner":"jane","company":{"id":"C-1","name":"Acme GmbH","email":"ap@acme.example","tax_id":"DE123","address":{"line1":"Hauptstr. 1","city":"Berlin","postal_code":"10115","country":"DE"}},"line_items":[{"sku":"PRO-1Y","description":"Pro plan, 1 year","quantity":"1","unit_price":"11000.00"},{"sku":"SUP-1Y","description":"Support","quantity":"2","unit_price":"500.00"}]}}`

func newBenchHandler(b *testing.B, now time.Time) *intake.Handler {
	b.Helper()
	src, err := generic.New(generic.Config{Secret: secret.New(config.DevSecret)})
	if err != nil {
		b.Fatal(err)
	}
	conns := benchConnections{"demo": {
		Name:       "demo",
		SourceType: "generic",
		Source:     src,
		Trigger:    mapping.StageTrigger{WonStages: config.DefaultWonStages},
		Mapper:     mapping.Default{PaymentTermsDays: 30},
	}}
	return intake.New(intake.Options{
		Connections: conns,
		Starter:     benchStarter{},
		// The access log is formatted as in production, then dropped.
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:    func() time.Time { return now },
	})
}

// BenchmarkIntakeWebhook is one signed delivery through the whole handler,
// with a Starter that costs nothing.
func BenchmarkIntakeWebhook(b *testing.B) {
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		events int
	}{{"single", 1}, {"batch10", 10}} {
		b.Run(tc.name, func(b *testing.B) {
			h := newBenchHandler(b, now)
			var body []byte
			if tc.events == 1 {
				body = fmt.Appendf(nil, benchEvent, 1)
			} else {
				body = append(body, '[')
				for i := range tc.events {
					if i > 0 {
						body = append(body, ',')
					}
					body = fmt.Appendf(body, benchEvent, i)
				}
				body = append(body, ']')
			}
			sig, err := generic.Sign(config.DevSecret, "msg_bench", now, body)
			if err != nil {
				b.Fatal(err)
			}
			ts := fmt.Sprint(now.Unix())
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/webhooks/demo", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set(generic.HeaderID, "msg_bench")
				req.Header.Set(generic.HeaderTimestamp, ts)
				req.Header.Set(generic.HeaderSignature, sig)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusAccepted {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
