package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// startJournaled starts a sandbox whose data is kept in the journal at
// path, as `dealsync dev` does.
func startJournaled(t *testing.T, path string) *harness {
	t.Helper()
	s := New(Options{})
	if err := s.OpenJournal(path); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		srv.Close()
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return &harness{t: t, s: s, srv: srv}
}

// stop stops serving and closes the journal, as a restart does.
func (h *harness) stop() {
	h.t.Helper()
	h.srv.Close()
	if err := h.s.Close(); err != nil {
		h.t.Fatal(err)
	}
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A restart keeps the customers, the invoices with their ids, and the
// idempotency keys: a retry after the restart gets the stored answer and
// creates nothing; new records continue the numbering.
func TestJournalKeepsDataAndKeysAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sandbox.jsonl")
	h := startJournaled(t, path)
	cus := h.customer("c1")
	first := h.call("POST", "/invoices", "inv-1", invoice(cus))
	if first.status != http.StatusCreated {
		t.Fatalf("create: %d %s", first.status, first.body)
	}
	customers, invoices := h.s.Customers(), h.s.Invoices()
	h.stop()

	h2 := startJournaled(t, path)
	if got, want := mustMarshal(t, h2.s.Customers()), mustMarshal(t, customers); got != want {
		t.Errorf("customers after restart:\n%s\nwant\n%s", got, want)
	}
	if got, want := mustMarshal(t, h2.s.Invoices()), mustMarshal(t, invoices); got != want {
		t.Errorf("invoices after restart:\n%s\nwant\n%s", got, want)
	}
	got := h2.call("GET", "/customers?external_id=c1", "", nil)
	var list struct{ Customers []Customer }
	got.decode(t, &list)
	if len(list.Customers) != 1 || list.Customers[0].ID != cus {
		t.Errorf("lookup by external id after restart: %s", got.body)
	}

	retry := h2.call("POST", "/invoices", "inv-1", invoice(cus))
	if retry.status != http.StatusCreated || retry.header.Get(replayedHeader) != "true" || !bytes.Equal(retry.body, first.body) {
		t.Errorf("retry after restart: %d replayed=%q\n%s\nwant the first answer\n%s",
			retry.status, retry.header.Get(replayedHeader), retry.body, first.body)
	}
	other := invoice(cus)
	other.Reference = "DEAL-OTHER"
	if a := h2.call("POST", "/invoices", "inv-1", other); a.status != http.StatusUnprocessableEntity {
		t.Errorf("key reused with another body after restart: %d %s, want 422", a.status, a.body)
	}
	if a := h2.call("POST", "/customers", "cus-c1", map[string]string{"external_id": "c1", "name": "Acme c1"}); a.status != http.StatusCreated || a.header.Get(replayedHeader) != "true" {
		t.Errorf("customer retry after restart: %d replayed=%q %s", a.status, a.header.Get(replayedHeader), a.body)
	}

	second := h2.call("POST", "/invoices", "inv-2", other)
	var inv Invoice
	second.decode(t, &inv)
	if second.status != http.StatusCreated || inv.ID != "INV-0002" || inv.Number != "SBX-000002" {
		t.Errorf("new invoice after restart: %d %s, want INV-0002 / SBX-000002", second.status, second.body)
	}
	if c := h2.customer("c2"); c != "CUS-0002" {
		t.Errorf("new customer after restart: %s, want CUS-0002", c)
	}
	if st := h2.s.Stats(); st.InvoicesCreated != 1 || st.CustomersCreated != 1 || st.IdempotentReplays != 2 {
		t.Errorf("stats count this process only: %+v", st)
	}
	h2.stop()

	h3 := startJournaled(t, path)
	if n, m := len(h3.s.Invoices()), len(h3.s.Customers()); n != 2 || m != 2 {
		t.Errorf("after a second restart: %d invoices, %d customers; want 2, 2", n, m)
	}
}

// A process stopped in the middle of writing a line leaves it without
// its newline: that creation was never answered, so the line is dropped
// and the next record starts on a line of its own.
func TestJournalDropsALastLineCutShort(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sandbox.jsonl")
	h := startJournaled(t, path)
	h.customer("c1")
	h.stop()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"scope":"/customers","idempotency_key":"cus-c2","cust`); err != nil {
		t.Fatal(err)
	}
	f.Close()

	h2 := startJournaled(t, path)
	if n := len(h2.s.Customers()); n != 1 {
		t.Fatalf("%d customers, want 1", n)
	}
	h2.customer("c2")
	h2.stop()

	h3 := startJournaled(t, path)
	if n := len(h3.s.Customers()); n != 2 {
		t.Errorf("%d customers after the next restart, want 2", n)
	}
}

func TestJournalRefusesADamagedLine(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.jsonl")
	h := startJournaled(t, good)
	h.customer("c1")
	h.customer("c2")
	h.stop()
	lines, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	first, second := strings.SplitAfter(string(lines), "\n")[0], strings.SplitAfter(string(lines), "\n")[1]

	for name, c := range map[string]struct {
		content string
		line    int // the line the error names
	}{
		"not JSON":        {first + "not json\n", 2}, // a valid first line: the damage is on the second
		"out of sequence": {second, 1},               // CUS-0002 without CUS-0001
		"no record":       {`{"scope":"/invoices","idempotency_key":"k","request_hash":"` + strings.Repeat("00", 32) + `"}` + "\n", 1},
		"long hash":       {`{"scope":"/invoices","idempotency_key":"k","request_hash":"` + strings.Repeat("00", 40) + `"}` + "\n", 1},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
			if err := os.WriteFile(path, []byte(c.content), 0o600); err != nil {
				t.Fatal(err)
			}
			err := New(Options{}).OpenJournal(path)
			if want := fmt.Sprintf("%s line %d:", path, c.line); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("OpenJournal = %v, want an error naming the file and the line (%q)", err, want)
			}
		})
	}
}

// A creation the journal cannot record is not made: the client gets a
// 500, nothing is stored, and the key is free for the retry.
func TestJournalWriteFailureCreatesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sandbox.jsonl")
	h := startJournaled(t, path)
	cus := h.customer("c1")
	h.s.mu.Lock()
	h.s.journal.Close() // every write now fails
	h.s.mu.Unlock()

	a := h.call("POST", "/invoices", "inv-1", invoice(cus))
	if a.status != http.StatusInternalServerError || !strings.Contains(a.errorDetail(t).Message, "cannot record") {
		t.Fatalf("unrecordable creation: %d %s, want 500", a.status, a.body)
	}
	if n := len(h.s.Invoices()); n != 0 {
		t.Fatalf("%d invoices after a failed record, want 0", n)
	}

	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	h.s.mu.Lock()
	h.s.journal = f
	h.s.mu.Unlock()
	if a := h.call("POST", "/invoices", "inv-1", invoice(cus)); a.status != http.StatusCreated || a.header.Get(replayedHeader) != "" {
		t.Fatalf("retry once the journal works: %d replayed=%q %s", a.status, a.header.Get(replayedHeader), a.body)
	}
	h.stop()
	h2 := startJournaled(t, path)
	if n, m := len(h2.s.Invoices()), len(h2.s.Customers()); n != 1 || m != 1 {
		t.Errorf("after restart: %d invoices, %d customers; want 1, 1", n, m)
	}
}

// A journal is written by one process: a second server opening it while
// the first holds it is refused, naming the file, once it has waited
// lockWait; one whose holder lets go meanwhile (a process killed a
// moment before, which a supervisor restarts at once) opens it.
func TestJournalIsOneWritersOnly(t *testing.T) {
	defer func(w time.Duration) { lockWait = w }(lockWait)
	lockWait = 100 * time.Millisecond
	path := filepath.Join(t.TempDir(), "sandbox.jsonl")
	first := New(Options{})
	if err := first.OpenJournal(path); err != nil {
		t.Fatal(err)
	}
	second := New(Options{})
	err := second.OpenJournal(path)
	if err == nil || !strings.Contains(err.Error(), "in use by another process") || !strings.Contains(err.Error(), path) {
		t.Fatalf("a second writer: %v", err)
	}
	// Where the system says who holds it (Linux), the holder is named:
	// here this process (a second descriptor of one process is refused
	// as another process's would be).
	var inUse *JournalInUseError
	if !errors.As(err, &inUse) {
		t.Fatalf("a second writer: %T, want a *JournalInUseError", err)
	}
	if runtime.GOOS == "linux" && (inUse.PID != os.Getpid() || inUse.Command == "" || !strings.Contains(err.Error(), fmt.Sprintf("(PID %d: ", os.Getpid()))) {
		t.Errorf("holder %d %q (%v), want this process, %d, and its command", inUse.PID, inUse.Command, err, os.Getpid())
	}
	lockWait = time.Minute
	go func() {
		time.Sleep(200 * time.Millisecond)
		_ = first.Close()
	}()
	third := New(Options{})
	if err := third.OpenJournal(path); err != nil {
		t.Fatalf("a holder that lets go while the next one waits: %v", err)
	}
	_ = third.Close()
}

// A request still served after Close (a shutdown that stopped waiting for
// it) creates nothing, answered 500: it created the invoice in memory
// only, answered 201, and the next start had lost it and gave its number
// to another deal.
func TestNothingIsCreatedAfterTheJournalCloses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sandbox.jsonl")
	h := startJournaled(t, path)
	cus := h.customer("c1")
	if err := h.s.Close(); err != nil {
		t.Fatal(err)
	}
	if a := h.call("POST", "/invoices", "inv-1", invoice(cus)); a.status != http.StatusInternalServerError || !strings.Contains(a.errorDetail(t).Message, "journal is closed") {
		t.Fatalf("a creation after Close: %d %s, want 500", a.status, a.body)
	}
	if n := len(h.s.Invoices()); n != 0 {
		t.Fatalf("%d invoices after Close, want 0", n)
	}
}
