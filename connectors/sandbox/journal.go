package sandbox

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
)

// The journal keeps the sandbox's data across restarts (`dealsync dev`
// keeps it beside Temporal's databases): one JSON line per customer or
// invoice created, with the idempotency key and request hash that created
// it, written before the creation is answered. Reading it back restores
// the customers and invoices with their ids (new ones continue the
// numbering) and the idempotency keys, so a client that retries a request
// after a restart gets the stored answer, not a second invoice.
//
// Lines are written with one write(2) each and not synced: the data
// survives a restart or a crash of the process, not of the machine.

// journalRecord is one line of the journal.
type journalRecord struct {
	// Scope is the path whose idempotency scope the key belongs to.
	Scope string `json:"scope"`
	Key   string `json:"idempotency_key"`
	// RequestHash is the hex SHA-256 of the canonical request body.
	RequestHash string    `json:"request_hash"`
	Customer    *Customer `json:"customer,omitempty"`
	Invoice     *Invoice  `json:"invoice,omitempty"`
}

// idemRef names the idempotency key of a request and the hash of its body.
type idemRef struct {
	scope, key string
	hash       [sha256.Size]byte
}

// id is the key's entry in Server.idem: keys are scoped by path.
func (r idemRef) id() string { return r.scope + "\x00" + r.key }

// JournalInUseError is OpenJournal's refusal of a journal file that
// another process holds.
type JournalInUseError struct {
	Path string
	// PID and Command are the holder's process id and command (its
	// program's name and subcommand, "dealsync dev", not its arguments), where
	// the system tells them (Linux: /proc/locks); 0 and "" otherwise.
	PID     int
	Command string
	Err     error
}

func (e *JournalInUseError) Error() string {
	return fmt.Sprintf("sandbox journal %s is in use by %s (another dealsync dev on the same data dir, or a dealsync sandbox with this journal): %v", e.Path, e.Holder(), e.Err)
}

func (e *JournalInUseError) Unwrap() error { return e.Err }

// Holder names the process that holds the journal: "another process
// (PID 4242: dealsync dev)", or "another process" when it is not known.
func (e *JournalInUseError) Holder() string {
	switch {
	case e.PID > 0 && e.Command != "":
		return fmt.Sprintf("another process (PID %d: %s)", e.PID, e.Command)
	case e.PID > 0:
		return fmt.Sprintf("another process (PID %d)", e.PID)
	}
	return "another process"
}

// OpenJournal restores the data recorded in the journal file at path
// (created if missing) and records every later creation in it. Call it
// once, on a new Server, before serving. A last line cut short by a crash
// is dropped (it was never answered); any other unreadable line is an
// error.
func (s *Server) OpenJournal(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("sandbox journal: %w", err)
	}
	// One writer: a second process on the file (a second `dealsync dev` on
	// the same data dir, or `dealsync sandbox --journal` beside it) would
	// write over its records. The lock goes with the file's descriptor.
	if err := lockExclusive(f); err != nil {
		pid, command := lockHolder(f)
		f.Close()
		return &JournalInUseError{Path: path, PID: pid, Command: command, Err: err}
	}
	good, err := s.replay(f, path)
	if err == nil {
		err = s.dropPartialTail(f, path, good)
	}
	if err != nil {
		f.Close()
		return err
	}
	s.mu.Lock()
	s.journal, s.journalEnd = f, good
	s.mu.Unlock()
	s.log.Info("sandbox: journal opened", slog.String("path", path),
		slog.Int("customers", len(s.customers)), slog.Int("invoices", len(s.invoices)))
	return nil
}

// replay reads the journal's complete lines into s and returns the offset
// after the last one.
func (s *Server) replay(f *os.File, path string) (int64, error) {
	r := bufio.NewReader(f)
	var good int64
	s.mu.Lock()
	defer s.mu.Unlock()
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return good, nil // a partial last line (no newline) is not counted
		}
		if err != nil {
			return 0, fmt.Errorf("sandbox journal %s: %w", path, err)
		}
		if err := s.restore(line); err != nil {
			return 0, fmt.Errorf("sandbox journal %s line %d: %w", path, n, err)
		}
		good += int64(len(line))
	}
}

// dropPartialTail cuts a last line that a crash left without its newline,
// so that the next record starts on a line of its own.
func (s *Server) dropPartialTail(f *os.File, path string, good int64) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("sandbox journal: %w", err)
	}
	if st.Size() == good {
		return nil
	}
	s.log.Warn("sandbox: journal ends with an incomplete line (the process stopped while writing it); dropping it",
		slog.String("path", path), slog.Int64("bytes", st.Size()-good))
	if err := f.Truncate(good); err != nil {
		return fmt.Errorf("sandbox journal: %w", err)
	}
	return nil
}

// restore applies one journal line. s.mu is held.
func (s *Server) restore(line []byte) error {
	var rec journalRecord
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return err
	}
	ref := idemRef{scope: rec.Scope, key: rec.Key}
	if len(rec.RequestHash) != hex.EncodedLen(sha256.Size) {
		return fmt.Errorf("request_hash %q is not a hex SHA-256", rec.RequestHash)
	}
	if _, err := hex.Decode(ref.hash[:], []byte(rec.RequestHash)); err != nil {
		return fmt.Errorf("request_hash %q is not a hex SHA-256", rec.RequestHash)
	}
	if rec.Key == "" || (rec.Customer == nil) == (rec.Invoice == nil) {
		return errors.New("a record needs an idempotency key and exactly one of customer and invoice")
	}
	var created any
	switch {
	case rec.Customer != nil:
		c := rec.Customer
		if want := customerID(len(s.customers) + 1); c.ID != want {
			return fmt.Errorf("customer id %q out of sequence, want %q", c.ID, want)
		}
		s.addCustomer(c)
		created = c
	default:
		inv := rec.Invoice
		if want := invoiceID(len(s.invoices) + 1); inv.ID != want {
			return fmt.Errorf("invoice id %q out of sequence, want %q", inv.ID, want)
		}
		s.addInvoice(inv)
		created = inv
	}
	s.idem[ref.id()] = &idemEntry{hash: ref.hash, stored: true, reply: reply{status: http.StatusCreated, resource: created}}
	return nil
}

// record appends the creation of c or inv, made by the request ref, to
// the journal, if there is one. s.mu is held.
func (s *Server) record(ref idemRef, c *Customer, inv *Invoice) error {
	if s.journalClosed {
		// A request still in hand after Close (a shutdown that stopped
		// waiting): what it would create could not be kept, so it is not
		// created (answered 5xx, its key released).
		return errors.New("sandbox: the journal is closed: shutting down")
	}
	if s.journal == nil {
		return nil
	}
	line, err := json.Marshal(journalRecord{
		Scope: ref.scope, Key: ref.key, RequestHash: hex.EncodeToString(ref.hash[:]),
		Customer: c, Invoice: inv,
	})
	if err != nil {
		return err
	}
	line = append(line, '\n')
	if _, err := s.journal.WriteAt(line, s.journalEnd); err != nil {
		// Cut what a short write left, so that the journal still ends
		// with a whole line.
		if terr := s.journal.Truncate(s.journalEnd); terr != nil {
			return errors.Join(err, terr)
		}
		return err
	}
	s.journalEnd += int64(len(line))
	return nil
}

// Close closes the journal, if there is one. A request still served
// afterwards creates nothing (it is answered 5xx): what it created would be
// lost at the next start.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal == nil {
		return nil
	}
	err := s.journal.Close()
	s.journal, s.journalClosed = nil, true
	return err
}
