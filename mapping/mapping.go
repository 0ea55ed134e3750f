// Package mapping turns a deal event into the invoice an ERP should receive
// and decides which events trigger a run at all. A Mapper is named and
// content-hashed so that every run can record exactly which version it used.
package mapping

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/model"
)

// Mapper maps one deal event to an invoice.
type Mapper interface {
	// Name identifies the mapping in config, memos and error messages.
	Name() string
	// Hash is a digest of the mapping's definition: two runs with the same
	// hash used the same mapping.
	Hash() string
	// Map builds the invoice (totals not yet computed). Errors are *Error.
	Map(ev model.DealEvent) (model.Invoice, error)
	// Tolerance is how far the invoice subtotal may be from the deal amount.
	Tolerance() decimal.Decimal
}

// Error is a mapping failure an integration engineer can act on: it names
// the mapping, the expression (if any), the invoice field and the value.
type Error struct {
	Mapping    string `json:"mapping"`
	Field      string `json:"field"`
	Expression string `json:"expression,omitempty"`
	Value      string `json:"value,omitempty"`
	Message    string `json:"message"`
}

func (e *Error) Error() string {
	s := fmt.Sprintf("mapping %q: field %s: %s", e.Mapping, e.Field, e.Message)
	if e.Expression != "" {
		s += fmt.Sprintf(" (expression `%s`)", e.Expression)
	}
	if e.Value != "" {
		s += fmt.Sprintf(" (value %q)", e.Value)
	}
	return s
}

// IsMappingError reports whether err is (or wraps) a mapping *Error.
func IsMappingError(err error) bool {
	var me *Error
	return errors.As(err, &me)
}

// HashOf is the content hash used by mappings: the first 12 hex digits of
// the SHA-256 of their definition.
func HashOf(definition []byte) string {
	sum := sha256.Sum256(definition)
	return hex.EncodeToString(sum[:])[:12]
}
