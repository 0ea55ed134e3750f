package erpkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/dealsync/dealsync/connectors"
)

// LinkStore keeps the link from a CRM company (its external id) to the ERP
// customer made or found for it, so the next invoice of the same company
// needs no search. Keys are namespaced by the caller (vendor and ERP
// account), e.g. "xero/<tenant>/<company id>".
//
// A link is an optimisation, never the only record: every connector also
// writes the CRM company id into the ERP customer itself where the ERP has
// a field for it (Xero ContactNumber, NetSuite externalId), so a lost link
// store costs one look-up, not a duplicate customer.
type LinkStore interface {
	Get(ctx context.Context, key string) (erpID string, ok bool, err error)
	Put(ctx context.Context, key, erpID string) error
	Delete(ctx context.Context, key string) error
}

// FileLinkStore keeps the links as one JSON object in a file, rewritten
// atomically (WriteFileAtomic) under an advisory lock on PATH.lock, so
// several workers on one host may share it. Get reads the file each time:
// links made by another process are seen at once.
type FileLinkStore struct {
	Path string
	mu   sync.Mutex
}

var _ LinkStore = (*FileLinkStore)(nil)

func (s *FileLinkStore) read() (map[string]string, error) {
	b, err := os.ReadFile(s.Path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, s.fail(err)
	}
	m := map[string]string{}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, s.fail(fmt.Errorf("not a link file: %w", err))
		}
	}
	return m, nil
}

// Get returns the ERP id linked to key.
func (s *FileLinkStore) Get(ctx context.Context, key string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.read()
	if err != nil {
		return "", false, err
	}
	id, ok := m[key]
	return id, ok && id != "", nil
}

// Put links key to erpID, durably.
func (s *FileLinkStore) Put(ctx context.Context, key, erpID string) error {
	return s.update(ctx, func(m map[string]string) { m[key] = erpID })
}

// Delete forgets key (e.g. the ERP customer was archived or merged).
func (s *FileLinkStore) Delete(ctx context.Context, key string) error {
	return s.update(ctx, func(m map[string]string) { delete(m, key) })
}

func (s *FileLinkStore) update(ctx context.Context, f func(map[string]string)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	unlock, err := lockFile(ctx, s.Path+".lock")
	if err != nil {
		return s.fail(err)
	}
	defer unlock()
	m, err := s.read()
	if err != nil {
		return err
	}
	f(m)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := WriteFileAtomic(s.Path, b, 0o600); err != nil {
		return s.fail(err)
	}
	return nil
}

func (s *FileLinkStore) fail(err error) error {
	return &connectors.LocalFileError{What: "link store", Path: s.Path, Err: err}
}

// NoLinks is a LinkStore that keeps nothing: every invoice looks the
// customer up by its external id in the ERP.
type NoLinks struct{}

func (NoLinks) Get(context.Context, string) (string, bool, error) { return "", false, nil }
func (NoLinks) Put(context.Context, string, string) error         { return nil }
func (NoLinks) Delete(context.Context, string) error              { return nil }
