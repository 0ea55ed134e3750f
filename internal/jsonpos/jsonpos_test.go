package jsonpos

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestOf(t *testing.T) {
	for _, c := range []struct {
		data, want string
		ok         bool
	}{
		{"{\n  \"a\": 1,\n  \"b\": x\n}", "line 3, column 8", true}, // a syntax error
		{"{\n  \"n\": \"text\"\n}", "line 2, column 13", true},      // a value of the wrong type
		{"", "line 1, column 1", true},                              // nothing at all
	} {
		var v struct{ N int }
		err := json.Unmarshal([]byte(c.data), &v)
		got, ok := Of([]byte(c.data), err)
		if got != c.want || ok != c.ok {
			t.Errorf("%q: %q, %v (error %v); want %q, %v", c.data, got, ok, err, c.want, c.ok)
		}
	}
	if _, ok := Of(nil, errors.New("other")); ok {
		t.Error("an error that is not encoding/json's has no position")
	}
}
