package yamlindent

import (
	"strings"
	"testing"
)

func TestFind(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		line       int // 0: none
		key        string
	}{
		{"well indented", `
connections:
  acme:
    source: {type: generic, secret: x}
    target: sandbox
    trigger:
      won_stages: [won]
  other:
    target: erp
log: {level: info}
`, 0, ""},
		{"a sequence of mappings and a block scalar", `
name: std
invoice:
  memo: |
    Deal: one
      indented: text
  lines:
    - description: item.description
      quantity: item.quantity
    - description: x
  due_date: add_days(deal.close_date, 30)
lookups:
  items: {entries: {a: b}}
`, 0, ""},
		{"quoted values over several lines, comments, anchors", `
x-env: &env
  A: 1
groups:   # a comment
  deps:
    patterns: ["*"]
  "500":
    description: "the book's name,\
      Format: publishers/{p}"
    other: 'it''s
      info: here'
  auto/sdk:
    files: [a]
`, 0, ""},
		{"keys with blanks, block scalars after a dash, an anchor or a tag, documents", `
my key:
    b: 1
other:
  - |
    a: text
      deeper: text
  - x
memo: &m |
    c: text
note: !!str >-
    d: text
flow: {a: {b: 1},
  c: 2}
---
  second: doc
  more: keys
`, 0, ""},
		{"a sequence at its key's indentation", `
mappings:
  files:
  - a.yaml
  - b.yaml
intake: {listen: ":8080"}
`, 0, ""},
		{"deeper than a key with its value", `
invoice:
  issue_date: deal.close_date
   due_date: add_days(deal.close_date, 30)
`, 4, "due_date"},
		{"between parent and siblings", `
connections:
  acme:
    source: {type: generic, secret: x}
   target: sandbox
`, 5, "target"},
		{"deeper in a sequence item", `
invoice:
  lines:
    - description: item.description
       quantity: item.quantity
`, 5, "quantity"},
		{"a top-level key indented", `
log: {level: info}
 intake: {listen: ":8080"}
`, 3, "intake"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := Find(strings.Split(tc.yaml, "\n"))
			if tc.line == 0 {
				if ok {
					t.Fatalf("found %+v in a well indented file", p)
				}
				return
			}
			if !ok || p.Line != tc.line || p.Key != tc.key || !strings.Contains(p.Message, "indent it as the keys beside it") {
				t.Fatalf("got %+v, %v; want line %d, key %s", p, ok, tc.line, tc.key)
			}
		})
	}
	if p, ok := Find([]string{"log:", "\tlevel: info"}); !ok || p.Line != 2 || !strings.Contains(p.Message, "tab") {
		t.Errorf("a tab: %+v %v", p, ok)
	}
}

// At reports the misindented key only where YAML stopped: on YAML's line
// for the messages that name the key's line, on or after it for "did not
// find expected key", and not for other messages.
func TestAt(t *testing.T) {
	lines := strings.Split("a:\n  b: 1\n   c: 2\n", "\n")
	for _, tc := range []struct {
		msg  string
		line int
		want bool
	}{
		{"mapping values are not allowed in this context", 3, true},
		{"mapping values are not allowed in this context", 2, false},
		{"yaml: line 1: did not find expected key", 1, true},
		{"did not find expected key", 4, false},
		{"found character that cannot start any token", 3, true},
		{"could not find expected ':'", 3, false},
	} {
		if p, ok := At(lines, tc.msg, tc.line); ok != tc.want || ok && p.Line != 3 {
			t.Errorf("%q at line %d: %+v, %v; want %v", tc.msg, tc.line, p, ok, tc.want)
		}
	}
}
