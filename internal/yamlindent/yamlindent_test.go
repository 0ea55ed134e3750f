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
		// The odd one out: the first key of a block, not the key after
		// it, when the keys after it are indented alike.
		{"the first key of a block shallower than the keys after it", `
invoice:
  customer:
    address:
     line1: deal.company.address.line1
      city: deal.company.address.city
      postal_code: deal.company.address.postal_code
`, 5, "line1"},
		{"the first key of a block deeper than the keys after it", `
invoice:
  address:
     line1: deal.company.address.line1
    city: deal.company.address.city
    postal_code: deal.company.address.postal_code
`, 4, "line1"},
		// One key after it: the file's usual step (2 here) tells.
		{"the first key of a block off the file's step, one key after it", `
targets:
  erp:
    type: http
connections:
  shop:
    target: erp
    source:
     type: generic
      secret: env:SHOP_SECRET
`, 9, "type"},
		{"the first key of a block on the file's step, one key after it deeper", `
targets:
  erp:
    type: http
connections:
  shop:
    target: erp
    source:
      type: generic
       secret: env:SHOP_SECRET
`, 10, "secret"},
		{"the first key of a block on the file's step, one key after it shallower", `
targets:
  erp:
    type: http
connections:
  shop:
    source:
      type: generic
     secret: env:SHOP_SECRET
`, 9, "secret"},
		{"a key beside a key with no value, the keys after it deeper", `
invoice:
  lines:
  item_code: lookup("item_codes", item.sku)
    description: item.description
    quantity: item.quantity
`, 4, "item_code"},
		{"a key beside a key with no value, one key after it deeper", `
invoice:
  lines:
  item_code: lookup("item_codes", item.sku)
    description: item.description
`, 5, "description"},
		// YAML's merge key is a key like the others: a block merged with
		// `<<: &anchor` sits under it, the keys beside it are its
		// siblings (the journey's c-indent.yaml and c-indent6.yaml).
		{"a merge key's block and the keys beside it", `
targets:
  xero:
    <<: &xero_common
      type: xero
      timeout: 30s
    tenant_id: 6a3c
    default_tax_type: OUTPUT2
  other:
    <<: *xero_common
    tenant_id: 7b4d
connections:
  shop:
    <<: [*a, *b]
    target: xero
`, 0, ""},
		{"a key deeper than its sibling after a merge key's block", `
targets:
  xero-unit-a:
    <<: &xero_common
      type: xero
      client_id: 9F2E
      timeout: 30s
    tenant_id: 6a3c1f0e
    token_file: /tmp/xero.token.json
    default_account_code: "200"
     default_tax_type: OUTPUT2
  qbo-unit-b:
    type: quickbooks
`, 11, "default_tax_type"},
		{"a key deeper than its sibling after a one-key merge block", `
connections:
  shop:
    <<: &t
      settle_time: 0s
    trigger:
      won_stages: [won]
    target: sandbox
    mapping: ""
     linger: 15m
`, 10, "linger"},
		{"a key of a merge key's block out of line", `
connections:
  shop:
    <<: &t
      settle_time: 0s
     linger: 15m
      trigger: {}
    target: sandbox
`, 6, "linger"},
		{"the file's first key indented, the keys after it not", `
  log:
    level: info
intake:
  listen: ":8080"
mappings:
  files: [a.yaml]
`, 2, "log"},
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

// The message says what the odd key's siblings are indented.
func TestFindSaysTheSiblingsIndentation(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"address:\n  line1: a\n   city: b\n   zip: c\n", "key line1 is indented 2 spaces, not 3 as the keys after it: indent it as the keys beside it"},
		{"address:\n line1: a\n  city: b\n  zip: c\n", "key line1 is indented 1 space, not 2 as the keys after it: indent it as the keys beside it"},
		{"lines:\nitem_code: a\n  description: b\n  quantity: c\n",
			"key item_code is indented 0 spaces, as lines above it, which it leaves with no value, while the 2 keys after it are indented 2: indent it as the keys beside it"},
		// The key above has its value on its line (mapping: ""): the
		// deeper key is read as more of that value, which is not on a
		// line of its own.
		{"connections:\n  shop:\n    target: sandbox\n    mapping: \"\"\n     linger: 15m\n",
			"key linger is indented 5 spaces, deeper than the key above it, mapping, whose value is on the same line as it, so YAML reads this line as more of that value: indent it as the keys beside it"},
	} {
		if p, ok := Find(strings.Split(tc.yaml, "\n")); !ok || p.Message != tc.want {
			t.Errorf("%q: %+v, %v; want %q", tc.yaml, p, ok, tc.want)
		}
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
	// The first key of a block named for the key after it: YAML stops on
	// the key after it.
	lines = strings.Split("address:\n     line1: a\n      city: b\n      zip: c\n", "\n")
	for _, tc := range []struct {
		msg  string
		line int
		want bool
	}{
		{"mapping values are not allowed in this context", 3, true},
		{"mapping values are not allowed in this context", 2, false},
		{"did not find expected key", 1, true},
		{"did not find expected key", 4, false},
	} {
		if p, ok := At(lines, tc.msg, tc.line); ok != tc.want || ok && (p.Line != 2 || p.Key != "line1") {
			t.Errorf("first key, %q at line %d: %+v, %v; want %v", tc.msg, tc.line, p, ok, tc.want)
		}
	}
}
