package mapping

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"sort"
	"strconv"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/model"
)

// string() and toJSON() of a value of the mapping's own (deal.company, a
// line item, deal.line_items, event) wrote Go's text of it: string() its
// fields' values without their names ("{C-1 Acme GmbH   {     DE}}"),
// toJSON() Go's field names ("TaxID", "PostalCode") and {} for a moment.
// Both now write it as JSON with the names a mapping reads its fields by
// (deal.company.tax_id: "tax_id"), in the order of the variables' table
// of docs/mappings.md: string() compact, without HTML escapes (as
// deal.raw reads JSON), toJSON() indented as toJSON() writes any value.
// A decimal is its text in quotes, as toJSON(deal.amount) and an
// invoice's JSON write it; a date "YYYY-MM-DD" and a moment its RFC 3339
// text in UTC, each "" when unset, as string() writes them; a list of
// none (a deal without line items) is []. Other values are written as
// before: only a value that is or holds one of the mapping's records is.
//
// structText puts _struct_text around the argument of string() and
// toJSON() where it may be or hold one (known at load, or of a type that
// shows only as the run reads it); _struct_text gives the JSON where it
// is or holds one, any other value as it is. Only for a file taken into
// use now (strict): a run that maps with its snapshot (its file changed
// since it started) writes Go's text, as before this release, even when
// it started after the upgrade.
type structText struct{}

const structTextFunc = "_struct_text"

func (structText) Visit(node *ast.Node) {
	b, ok := (*node).(*ast.BuiltinNode)
	if !ok || (b.Name != "string" && b.Name != "toJSON") || len(b.Arguments) != 1 {
		return
	}
	arg := b.Arguments[0]
	if isCallOf(arg, structTextFunc) {
		return
	}
	inner := arg
	if c, ok := arg.(*ast.CallNode); ok && (isCallOf(c, "_no_func") || isCallOf(c, "_nil_text")) && len(c.Arguments) > 0 {
		inner = c.Arguments[0] // funcGuard's, of any type: judged by what it guards
	}
	nt := inner.Nature()
	if !unknownType(nt) && !typeMayHoldRecord(nt.Type) {
		return
	}
	wrap := &ast.CallNode{Callee: &ast.IdentifierNode{Value: structTextFunc}, Arguments: []ast.Node{arg, &ast.StringNode{Value: b.Name}}}
	wrap.SetLocation(arg.Location())
	b.Arguments[0] = wrap
}

// structTextOptions are structText and _struct_text; they come after
// funcOptions, so that a value that holds a function is refused first.
func structTextOptions() []expr.Option {
	return []expr.Option{
		expr.Patch(structText{}),
		expr.Function(structTextFunc, func(p ...any) (any, error) {
			v := reflect.ValueOf(p[0])
			if !valueHoldsRecord(v, 0) {
				return p[0], nil
			}
			var buf bytes.Buffer
			if err := writeRecordJSON(&buf, v, 0); err != nil {
				return nil, err
			}
			if p[1] == "toJSON" {
				return json.RawMessage(buf.Bytes()), nil // indented by toJSON
			}
			return buf.String(), nil
		}, new(func(any, string) any)),
	}
}

// recordTypes are the mapping's records: the structs of the variables.
var recordTypes = map[reflect.Type]bool{}

func init() {
	for _, t := range []reflect.Type{
		reflect.TypeFor[DealEnv](), reflect.TypeFor[CompanyEnv](), reflect.TypeFor[AddressEnv](),
		reflect.TypeFor[LineItemEnv](), reflect.TypeFor[EventEnv](), reflect.TypeFor[DefaultsEnv](),
		reflect.TypeFor[InvoiceEnv](), reflect.TypeFor[CustomerEnv](),
		reflect.TypeFor[Env](), reflect.TypeFor[LineEnv](), reflect.TypeFor[TriggerEnv](),
	} {
		recordTypes[t] = true
	}
}

// recordHolders caches typeMayHoldRecord by type.
var recordHolders sync.Map // reflect.Type → bool

// typeMayHoldRecord says whether a value of type t may be a record or
// hold one (in an element, a map's value, or an interface value).
func typeMayHoldRecord(t reflect.Type) bool {
	if t == nil {
		return true
	}
	if v, ok := recordHolders.Load(t); ok {
		return v.(bool)
	}
	may := typeHoldsRecord(t, 0)
	recordHolders.Store(t, may)
	return may
}

func typeHoldsRecord(t reflect.Type, depth int) bool {
	if depth > maxFuncDepth {
		return false
	}
	if recordTypes[t] {
		return true
	}
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		return typeHoldsRecord(t.Elem(), depth+1)
	}
	return false
}

// valueHoldsRecord says whether v is a record or holds one.
func valueHoldsRecord(v reflect.Value, depth int) bool {
	if !v.IsValid() || depth > maxFuncDepth || !typeMayHoldRecord(v.Type()) {
		return false
	}
	if recordTypes[v.Type()] {
		return true
	}
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		return !v.IsNil() && valueHoldsRecord(v.Elem(), depth+1)
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if valueHoldsRecord(v.Index(i), depth+1) {
				return true
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if valueHoldsRecord(it.Value(), depth+1) {
				return true
			}
		}
	}
	return false
}

// writeRecordJSON writes v as compact JSON without HTML escapes: a
// record with its fields' expression names, a decimal as its quoted text,
// a date and a moment as string() writes them.
func writeRecordJSON(buf *bytes.Buffer, v reflect.Value, depth int) error {
	if depth > maxFuncDepth {
		buf.WriteString("null")
		return nil
	}
	if !v.IsValid() {
		buf.WriteString("null")
		return nil
	}
	switch v.Type() {
	case decimalType:
		writeJSONString(buf, v.Interface().(decimal.Decimal).String())
		return nil
	case dateType:
		writeJSONString(buf, v.Interface().(model.Date).String())
		return nil
	case momentType:
		writeJSONString(buf, v.Interface().(Moment).String())
		return nil
	}
	if recordTypes[v.Type()] {
		buf.WriteByte('{')
		first := true
		var fields func(v reflect.Value) error
		fields = func(v reflect.Value) error {
			t := v.Type()
			for i := range t.NumField() {
				f := t.Field(i)
				if f.Anonymous {
					if err := fields(v.Field(i)); err != nil {
						return err
					}
					continue
				}
				name := f.Tag.Get("expr")
				if !f.IsExported() || name == "-" || f.Type.Kind() == reflect.Func {
					continue
				}
				if name == "" {
					name = f.Name
				}
				if !first {
					buf.WriteByte(',')
				}
				first = false
				writeJSONString(buf, name)
				buf.WriteByte(':')
				if err := writeRecordJSON(buf, v.Field(i), depth+1); err != nil {
					return err
				}
			}
			return nil
		}
		if err := fields(v); err != nil {
			return err
		}
		buf.WriteByte('}')
		return nil
	}
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			buf.WriteString("null")
			return nil
		}
		return writeRecordJSON(buf, v.Elem(), depth+1)
	case reflect.Slice, reflect.Array:
		buf.WriteByte('[')
		for i := range v.Len() {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeRecordJSON(buf, v.Index(i), depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
		return nil
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			break
		}
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeJSONString(buf, k)
			buf.WriteByte(':')
			if err := writeRecordJSON(buf, v.MapIndex(reflect.ValueOf(k).Convert(v.Type().Key())), depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
		return nil
	case reflect.Float64:
		if f := v.Float(); !math.IsNaN(f) && !math.IsInf(f, 0) {
			buf.WriteString(floatText(f))
		} else {
			buf.WriteString("null")
		}
		return nil
	case reflect.Int:
		buf.WriteString(strconv.FormatInt(v.Int(), 10))
		return nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v.Interface()); err != nil {
		return err
	}
	buf.Write(bytes.TrimRight(b.Bytes(), "\n"))
	return nil
}

// writeJSONString writes s as a JSON string without HTML escapes.
func writeJSONString(buf *bytes.Buffer, s string) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	buf.Write(bytes.TrimRight(b.Bytes(), "\n"))
}
