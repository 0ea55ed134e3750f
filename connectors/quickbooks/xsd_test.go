package quickbooks_test

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/erpkit/speccheck"
	"github.com/dealsync/dealsync/connectors/quickbooks"
	"github.com/dealsync/dealsync/model"
)

// QBO's API takes JSON, but Intuit publishes its entities only as XSD
// (Finance.xsd and includes). This contract test reads the XSD's structure
// (complex types with their extension chains, elements, attributes, simple
// types with enumerations) and checks every field of every body the target
// builds: the name must be an element of the type (or, for simpleContent
// types such as ReferenceType, "value" or an attribute), and a scalar must
// have the XSD's type (decimal → JSON number, boolean → bool, date →
// YYYY-MM-DD, enumeration → one of its values). It does not check
// element order (JSON has none), minOccurs (QBO's real required fields are
// business rules the XSD leaves optional) or facets such as maxLength.

type xsdType struct {
	name     string
	base     string
	simple   bool // simpleContent: {"value": ...} plus attributes
	elements map[string]string
	attrs    map[string]string
}

type xsdSchema struct {
	complex map[string]*xsdType
	enums   map[string][]string
	simple  map[string]string // simpleType → base
}

func local(s string) string {
	if i := strings.IndexByte(s, ':'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func loadXSD(t *testing.T, dir string) *xsdSchema {
	t.Helper()
	s := &xsdSchema{complex: map[string]*xsdType{}, enums: map[string][]string{}, simple: map[string]string{}}
	files, err := filepath.Glob(filepath.Join(dir, "*.xsd"))
	if err != nil || len(files) == 0 {
		// The caller found Finance.xsd there: none is a broken folder.
		t.Fatalf("no XSD files in %s (%v)", dir, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := xml.NewDecoder(strings.NewReader(string(b)))
		var stack []*xsdType
		var simpleName string
		depth := 0
		typeDepth := []int{}
		for {
			tok, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				// A schema read in part would leave its later types out.
				t.Fatalf("%s: %v", f, err)
			}
			switch el := tok.(type) {
			case xml.StartElement:
				depth++
				attr := func(n string) string {
					for _, a := range el.Attr {
						if a.Name.Local == n {
							return a.Value
						}
					}
					return ""
				}
				switch el.Name.Local {
				case "complexType":
					name := attr("name")
					if name == "" && len(stack) > 0 { // anonymous: the enclosing element's type
						name = stack[len(stack)-1].name + "/anon"
					}
					ct := &xsdType{name: name, elements: map[string]string{}, attrs: map[string]string{}}
					if attr("name") != "" {
						s.complex[name] = ct
					}
					stack = append(stack, ct)
					typeDepth = append(typeDepth, depth)
				case "simpleType":
					simpleName = attr("name")
				case "restriction":
					if simpleName != "" {
						s.simple[simpleName] = local(attr("base"))
					}
				case "enumeration":
					if simpleName != "" {
						s.enums[simpleName] = append(s.enums[simpleName], attr("value"))
					}
				case "simpleContent":
					if len(stack) > 0 {
						stack[len(stack)-1].simple = true
					}
				case "extension":
					if len(stack) > 0 {
						stack[len(stack)-1].base = local(attr("base"))
					}
				case "element":
					if len(stack) > 0 && attr("name") != "" {
						stack[len(stack)-1].elements[attr("name")] = local(attr("type"))
					}
				case "attribute":
					if len(stack) > 0 && attr("name") != "" {
						stack[len(stack)-1].attrs[attr("name")] = local(attr("type"))
					}
				}
			case xml.EndElement:
				if el.Name.Local == "simpleType" {
					simpleName = ""
				}
				if len(typeDepth) > 0 && typeDepth[len(typeDepth)-1] == depth && el.Name.Local == "complexType" {
					stack, typeDepth = stack[:len(stack)-1], typeDepth[:len(typeDepth)-1]
				}
				depth--
			}
		}
	}
	if s.complex["Invoice"] == nil || s.complex["Customer"] == nil {
		t.Fatal("the XSD has no Invoice or Customer type")
	}
	return s
}

// field finds a field of a complex type along its extension chain.
func (s *xsdSchema) field(typ, name string) (string, bool) {
	for ct := s.complex[typ]; ct != nil; ct = s.complex[ct.base] {
		if ft, ok := ct.elements[name]; ok {
			return ft, true
		}
		if ft, ok := ct.attrs[name]; ok {
			return ft, true
		}
		if ct.simple && name == "value" {
			return ct.base, true
		}
	}
	return "", false
}

var dateRe = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// check validates a decoded JSON value against an XSD type.
func (s *xsdSchema) check(path, typ string, v any, problems *[]string) {
	add := func(f string, a ...any) { *problems = append(*problems, path+": "+fmt.Sprintf(f, a...)) }
	if list, ok := v.([]any); ok {
		for i, e := range list {
			s.check(fmt.Sprintf("%s[%d]", path, i), typ, e, problems)
		}
		return
	}
	if _, ok := s.complex[typ]; ok {
		obj, ok := v.(map[string]any)
		if !ok {
			add("want an object (%s), got %T", typ, v)
			return
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ft, ok := s.field(typ, k)
			if !ok {
				add("%s has no field %q", typ, k)
				continue
			}
			s.check(path+"."+k, ft, obj[k], problems)
		}
		return
	}
	base := typ
	if enum, ok := s.enums[typ]; ok {
		str, _ := v.(string)
		found := false
		for _, e := range enum {
			found = found || e == str
		}
		if !found {
			add("%v is not one of %s's values", v, typ)
		}
		return
	}
	for s.simple[base] != "" && base != s.simple[base] {
		base = s.simple[base]
	}
	switch base {
	case "decimal", "double", "float", "int", "integer", "long", "positiveInteger", "nonNegativeInteger":
		if _, ok := v.(json.Number); !ok {
			add("want a number (%s), got %T", typ, v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			add("want a boolean, got %T", v)
		}
	case "date":
		if str, ok := v.(string); !ok || !dateRe.MatchString(str) {
			add("want a date YYYY-MM-DD, got %v", v)
		}
	case "string", "id", "anyURI", "dateTime", "":
		if _, ok := v.(string); !ok {
			add("want a string (%s), got %T", typ, v)
		}
	default:
		add("unknown XSD type %s", typ)
	}
}

func decodeBody(t *testing.T, b []byte) any {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestContractQBOAgainstXSD(t *testing.T) {
	xsd := loadXSD(t, filepath.Dir(speccheck.File(t, "quickbooks-xsd/Finance.xsd")))
	f := newFake(t)
	tg := newTarget(t, f)

	jpy := model.Invoice{Reference: "D-2002", Currency: "JPY", Customer: model.Customer{Name: "Yamada KK"},
		IssueDate: model.NewDate(2026, 1, 5), DueDate: model.NewDate(2026, 2, 4),
		Lines: []model.InvoiceLine{{Description: "Seats", Quantity: d("12"), UnitPrice: d("1500")}}}
	jpy.ComputeTotals()
	discounted := exampleInvoice() // one tax code on every line: QBO spreads the discount
	for name, inv := range map[string]model.Invoice{"discounted EUR": discounted, "JPY": jpy} {
		t.Run(name, func(t *testing.T) {
			req, err := tg.PlanInvoice(inv, connectors.CustomerRef{ID: "58"}, "k")
			if err != nil {
				t.Fatal(err)
			}
			var problems []string
			xsd.check("Invoice", "Invoice", decodeBody(t, req.Body), &problems)
			nc := quickbooks.NewCustomer(inv.Customer)
			nc.CurrencyRef = &quickbooks.Ref{Value: string(inv.Currency)} // as sent to a multicurrency company
			cb, _ := json.Marshal(nc)
			xsd.check("Customer", "Customer", decodeBody(t, cb), &problems)
			if len(problems) > 0 {
				t.Fatalf("not valid against Intuit's XSD:\n%s\ninvoice: %s\ncustomer: %s", strings.Join(problems, "\n"), req.Body, cb)
			}
		})
	}
	// A company outside the US: GlobalTaxCalculation says the amounts are
	// net of tax, a value of the XSD's enumeration.
	t.Run("TaxExcluded", func(t *testing.T) {
		nonUS, err := quickbooks.NewInvoice(discounted, "58", quickbooks.Options{DefaultItemID: "1", GlobalTaxCalculation: "TaxExcluded"})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(nonUS)
		var problems []string
		xsd.check("Invoice", "Invoice", decodeBody(t, b), &problems)
		if len(problems) > 0 || !strings.Contains(string(b), `"GlobalTaxCalculation":"TaxExcluded"`) {
			t.Fatalf("%s\n%s", strings.Join(problems, "\n"), b)
		}
	})
	t.Run("the preferences dealsync reads", func(t *testing.T) {
		var p quickbooks.Preferences
		p.CurrencyPrefs.MultiCurrencyEnabled = true
		p.CurrencyPrefs.HomeCurrency = quickbooks.Ref{Value: "USD"}
		off := false
		p.SalesFormsPrefs.CustomTxnNumbers = &off
		b, _ := json.Marshal(p)
		var problems []string
		xsd.check("Preferences", "Preferences", decodeBody(t, b), &problems)
		if len(problems) > 0 {
			t.Fatalf("not valid against Intuit's XSD:\n%s\n%s", strings.Join(problems, "\n"), b)
		}
	})
	t.Run("a bad body is caught (the check is live)", func(t *testing.T) {
		var problems []string
		bad := `{"CustomerRef":{"value":"1","bogus":"x"},"TxnDate":"20.11.2026","Line":[{"DetailType":"SalesLine","Amount":"12.00","Colour":"red"}]}`
		xsd.check("Invoice", "Invoice", decodeBody(t, []byte(bad)), &problems)
		if len(problems) != 5 {
			t.Fatalf("want 5 problems (unknown attribute, date, enum, string amount, unknown field), got %d:\n%s", len(problems), strings.Join(problems, "\n"))
		}
	})
}
