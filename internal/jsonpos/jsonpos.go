// Package jsonpos says where in a JSON text encoding/json stopped: the
// line and column of a syntax error or of a value of the wrong type,
// which its messages give as a byte offset at most; and reads past the
// byte order mark some editors and senders put before JSON, which
// encoding/json refuses.
package jsonpos

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Position turns a byte offset in data into a 1-based line and column.
func Position(data []byte, offset int64) (line, col int) {
	offset = max(0, min(offset, int64(len(data))))
	before := data[:offset]
	line = bytes.Count(before, []byte{'\n'}) + 1
	col = int(offset) - (bytes.LastIndexByte(before, '\n') + 1)
	if col == 0 {
		col = 1
	}
	return line, col
}

// Of is where err, an error of decoding data, stopped, as "line L,
// column C"; false for an error that says no offset.
func Of(data []byte, err error) (string, bool) {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var offset int64
	switch {
	case errors.As(err, &syntax):
		offset = syntax.Offset
	case errors.As(err, &typ):
		offset = typ.Offset
	default:
		return "", false
	}
	line, col := Position(data, offset)
	return fmt.Sprintf("line %d, column %d", line, col), true
}

// WithoutBOM is data without a leading UTF-8 byte order mark (RFC 8259
// lets a parser ignore one).
func WithoutBOM(data []byte) []byte { return bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) }
