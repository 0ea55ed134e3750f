package app

import (
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
)

// The types are spelled as `temporal operator search-attribute create
// --type` takes them.
func TestSearchAttributeTypeNames(t *testing.T) {
	for typ, want := range map[enumspb.IndexedValueType]string{
		enumspb.INDEXED_VALUE_TYPE_KEYWORD:      "Keyword",
		enumspb.INDEXED_VALUE_TYPE_DOUBLE:       "Double",
		enumspb.INDEXED_VALUE_TYPE_BOOL:         "Bool",
		enumspb.INDEXED_VALUE_TYPE_DATETIME:     "Datetime",
		enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST: "KeywordList",
		enumspb.INDEXED_VALUE_TYPE_TEXT:         "Text",
		enumspb.INDEXED_VALUE_TYPE_INT:          "Int",
	} {
		if got := typeName(typ); got != want {
			t.Errorf("%v: %q, want %q", typ, got, want)
		}
	}
	err := &SearchAttributeError{Namespace: "sales", Missing: []MissingAttribute{
		{Name: "Amount", Want: "Double", Have: "Keyword"}, {Name: "DealId", Want: "Keyword"},
	}}
	msg := err.Error()
	for _, want := range []string{
		`namespace "sales" lacks dealsync's search attributes Amount (Double; registered as Keyword`,
		", DealId (Keyword)",
		"\n  temporal operator search-attribute create --namespace sales --name Amount --type Double",
		"\n  temporal operator search-attribute create --namespace sales --name DealId --type Keyword",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
}
