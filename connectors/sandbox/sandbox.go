// Package sandbox is a small ERP with customers and invoices. dealsync
// reaches it through the "http" target (package connectors/httptarget) like
// any real ERP; it honours Idempotency-Key and can inject faults (errors,
// rate limits, latency, lost responses) so that retries and exactly-once
// delivery can be seen working. `dealsync dev` serves it on 127.0.0.1:8090
// and the tests start it with httptest. Its data lives in memory, and with
// OpenJournal also in a file that brings it back after a restart (see
// journal.go): `dealsync dev` keeps it in its data dir.
//
// # API
//
// JSON in and out; errors are {"error":{"message":"...","field":"..."}}.
// Amounts are decimal strings (see httptarget.InvoiceBody).
//
//	POST /customers                 201 customer       (Idempotency-Key required)
//	                                409 {"error":{...},"customer":{...}} when a customer
//	                                has its external_id: external ids are unique
//	GET  /customers?external_id=X   200 {"customers":[...]}, exact match, creation order
//	GET  /customers/{id}            200 customer | 404
//	POST /invoices                  201 invoice        (Idempotency-Key required)
//	GET  /invoices[?reference=R][&reference_prefix=P]
//	                                200 {"invoices":[...]}, creation order
//	GET  /invoices/{id}             200 invoice | 404
//	GET  /healthz                   200
//
// Wrong methods get 405, unknown paths 404, a POST whose Content-Type is not
// JSON 415, a body over 1 MiB 413, malformed JSON or unknown fields 400.
// With Options.AuthToken set, every path but /healthz requires
// "Authorization: Bearer <token>" (401 otherwise).
//
// # Idempotency
//
// As in Stripe's API and the IETF Idempotency-Key draft: a key is
// remembered, per path (/customers and /invoices are separate scopes), with
// a hash of the request body and the answer. Sending the key again with the
// same body answers the stored status and body with "Idempotent-Replayed:
// true" and creates nothing; with a different body it answers 422. Only
// successful (2xx) answers are stored: a request refused by validation
// releases its key, as Stripe does, so it is evaluated afresh next time.
//
// A request whose key is still in progress (the first request with it has
// not been answered yet: a client's retry after its attempt timed out) is
// answered 409 {"error":{"message":"a request with this Idempotency-Key is
// in progress; retry it later"}} with "Retry-After: 1", as the draft and
// Stripe answer it, and creates nothing; asked again once the first has
// finished, it gets the replay (or, if the first failed, is processed).
// A different body under an in-flight key is refused with 422.
//
// # Validation
//
// POST /invoices is refused with 422 naming the field when a line's amount
// is not quantity × unit_price − discount, or its tax_amount is not
// amount × tax_rate / 100, each rounded to the currency's minor units half
// away from zero as model.Invoice.ComputeTotals rounds them; or when
// subtotal, tax_total or total is not the sum it stands for.
//
// # Faults
//
// Faults are decided before any processing, so nothing is created when one
// is answered. Script applies to POST /invoices only; ErrorRate,
// RateLimitRate and Latency apply to every POST and to GET /customers[/{id}];
// LostResponseRate applies to POSTs. GET /invoices[/{id}] and /healthz are
// never faulted: they are how people and tests inspect the ERP.
//
// Latency holds the answer, not the request: the request is processed at
// once (an invoice is created, its key stored) and its answer sent Latency
// later, or never if the client has gone by then, as when a slow ERP or
// network outlasts the client's timeout; the client's retry with the same
// key then gets the replay.
package sandbox

import (
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/dealsync/dealsync/connectors/httptarget"
)

// Faults are the failures the sandbox injects.
type Faults struct {
	// ErrorRate is the fraction of API calls answered 503 (with
	// Retry-After, refused before any processing).
	ErrorRate float64
	// RateLimitRate is the fraction answered 429 with Retry-After.
	RateLimitRate float64
	// RetryAfter is the value of Retry-After on the 429s and 503s (whole
	// seconds, rounded up, at least 1).
	RetryAfter time.Duration
	// Latency holds the answer of every faultable API call (a fault's
	// too): the request is processed first, and its answer is dropped if
	// the client is gone by the time it is due.
	Latency time.Duration
	// Script forces the status of the first len(Script) POST /invoices
	// calls (e.g. []int{503, 429}) before the rates apply; deterministic
	// tests use it. An entry outside 400-599 (e.g. 0) lets that call through
	// unfaulted.
	// SetFaults restarts the script.
	Script []int
	// LostResponseRate is the fraction of POST calls that are processed
	// (the invoice is created and its idempotency key stored) but answered
	// 502, as when a proxy loses the answer. Only the client's retry with
	// the same key, answered by the idempotent replay, avoids a duplicate.
	// Replays and refusals (4xx) are never lost.
	LostResponseRate float64
}

// Options configure a Server.
type Options struct {
	Faults Faults
	// Seed makes the random fault decisions reproducible: the same seed
	// and the same sequence of calls give the same faults.
	Seed   int64
	Logger *slog.Logger // nil discards
	// AuthToken, if set, is required as "Authorization: Bearer <token>".
	AuthToken string
}

// Customer is a customer as the sandbox stores and answers it.
type Customer struct {
	ID string `json:"id"`
	httptarget.CustomerBody
	CreatedAt time.Time `json:"created_at"`
}

// Invoice is an invoice as the sandbox stores and answers it: the request
// body plus the ERP's id, number, link and creation time.
type Invoice struct {
	ID     string `json:"id"`
	Number string `json:"number"`
	URL    string `json:"url"`
	httptarget.InvoiceBody
	CreatedAt time.Time `json:"created_at"`
}

// Stats are the sandbox's counters since New.
type Stats struct {
	// Requests counts every HTTP request received.
	Requests int
	// Faults counts injected faults by status: 503, 429, scripted statuses,
	// and 502 for lost responses.
	Faults            map[int]int
	CustomersCreated  int
	InvoicesCreated   int
	IdempotentReplays int
	// KeysInProgress counts requests answered 409 because the first
	// request with their idempotency key was still in progress.
	KeysInProgress int
}

// Server is the sandbox ERP. Its methods are safe for concurrent use.
type Server struct {
	log   *slog.Logger
	token string

	mu        sync.Mutex
	faults    Faults
	scriptPos int
	rng       *rand.Rand

	customers []*Customer
	custByID  map[string]*Customer
	custByExt map[string][]*Customer // external_id → customers, in creation order
	invoices  []*Invoice
	invByID   map[string]*Invoice
	idem      map[string]*idemEntry // scope + "\x00" + key
	stats     Stats

	// journal, if opened, records every creation (journal.go);
	// journalEnd is the offset after its last whole line.
	journal *os.File
	// journalClosed: Close closed the journal; nothing more is created.
	journalClosed bool
	journalEnd    int64

	// beforeProcess, set by tests before serving, is called when a
	// request that holds its idempotency key starts being processed.
	beforeProcess func()
	// onHold, set by tests before serving, is called when an answer starts
	// being held for Latency, its request processed.
	onHold func()
}

// New makes a sandbox with no data, kept in memory until OpenJournal.
func New(o Options) *Server {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	seed := uint64(o.Seed)
	return &Server{
		log:       log,
		token:     o.AuthToken,
		faults:    cloneFaults(o.Faults),
		rng:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		custByID:  map[string]*Customer{},
		custByExt: map[string][]*Customer{},
		invByID:   map[string]*Invoice{},
		idem:      map[string]*idemEntry{},
		stats:     Stats{Faults: map[int]int{}},
	}
}

// Handler serves the sandbox's HTTP API.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// SetFaults replaces the faults to inject from the next call on and
// restarts the script.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = cloneFaults(f)
	s.scriptPos = 0
}

// Faults are the faults injected now (a copy).
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneFaults(s.faults)
}

// Invoices is a snapshot of the invoices, in creation order.
func (s *Server) Invoices() []Invoice {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Invoice, len(s.invoices))
	for i, inv := range s.invoices {
		out[i] = copyInvoice(inv)
	}
	return out
}

// Customers is a snapshot of the customers, in creation order.
func (s *Server) Customers() []Customer {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Customer, len(s.customers))
	for i, c := range s.customers {
		out[i] = *c
	}
	return out
}

// Stats is a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Faults = maps.Clone(s.stats.Faults)
	return st
}

// addCustomer stores c. s.mu is held.
func (s *Server) addCustomer(c *Customer) {
	s.customers = append(s.customers, c)
	s.custByID[c.ID] = c
	s.custByExt[c.ExternalID] = append(s.custByExt[c.ExternalID], c)
}

// addInvoice stores inv. s.mu is held.
func (s *Server) addInvoice(inv *Invoice) {
	s.invoices = append(s.invoices, inv)
	s.invByID[inv.ID] = inv
}

func cloneFaults(f Faults) Faults {
	f.Script = slices.Clone(f.Script)
	return f
}

func copyInvoice(inv *Invoice) Invoice {
	c := *inv
	c.Lines = slices.Clone(inv.Lines)
	return c
}
