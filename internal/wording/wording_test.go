package wording

import "testing"

func TestLists(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{ListOrNone(nil), "none"},
		{ListOrNone([]string{"a", "b"}), "a, b"},
		{SomeOf([]string{"a", "b"}, 2), "a, b"},
		{SomeOf([]string{"a", "b", "c", "d", "e"}, 2), "a, b and 3 more"},
		{SomeOf(nil, 3), ""},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestQuoted(t *testing.T) {
	if got := SomeOf(Quoted([]string{"a", "b\n", "c"}), 2); got != `"a", "b\n" and 1 more` {
		t.Errorf("got %s", got)
	}
}
