package mapping

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"go.yaml.in/yaml/v3"
)

// templateHint is the hint for an expression, src of the field key, that
// expr cannot parse (the caller checks) and is written as a text template: braces around
// values outside any quotes, `DS-{deal.id}` (also ${…} and {{…}}). An
// expression is no template; the hint says how it joins texts, with the
// rewrite when it compiles (with opts): `'"DS-" + deal.id'`, a value that
// is no text given to string(). "" when src has no such braces.
func templateHint(src, key string, opts []expr.Option) string {
	parts, literal, ok := templateParts(src)
	if !ok {
		return ""
	}
	general := "; an expression is no template, {…} does not put a value into a text: join texts written in quotes and values with +, " +
		`as in '"DS-" + deal.id' (the whole YAML value in single quotes)`
	if !literal {
		return general
	}
	field := key[strings.LastIndex(key, ".")+1:]
	for _, wrap := range []bool{false, true} {
		var b strings.Builder
		for i, p := range parts {
			if i > 0 {
				b.WriteString(" + ")
			}
			switch {
			case !p.value:
				b.WriteString(strconv.Quote(p.text))
			case wrap && !compilesToString(p.text, opts):
				b.WriteString("string(" + p.text + ")")
			default:
				b.WriteString(p.text)
			}
		}
		rewrite := b.String()
		if compilesToString(rewrite, opts) {
			return fmt.Sprintf("; an expression is no template, {…} does not put a value into a text: join texts written in quotes and values with +, "+
				"write %s: '%s' (the whole YAML value in single quotes)", field, strings.ReplaceAll(rewrite, "'", "''"))
		}
	}
	return general
}

// compilesToString says whether src compiles with opts to a string.
func compilesToString(src string, opts []expr.Option) bool {
	prog, err := expr.Compile(src, opts...)
	return err == nil && prog.Node().Type() != nil && prog.Node().Type().Kind().String() == "string"
}

// templatePart is a piece of a text template: text as written, or a
// value's expression (between braces).
type templatePart struct {
	text  string
	value bool
}

// templateParts splits src, a text template, into its texts and values:
// ok when src has a brace pair around something outside quotes. literal
// says that its texts are plain (no quotes, no operator joining them
// already), so the rewrite can quote them.
func templateParts(src string) (parts []templatePart, literal, ok bool) {
	literal = true
	runes := []rune(src)
	var text strings.Builder
	var quote rune
	for i := 0; i < len(runes); i++ {
		c := runes[i]
		switch {
		case quote != 0:
			text.WriteRune(c)
			if c == '\\' && quote != '`' && i+1 < len(runes) {
				i++
				text.WriteRune(runes[i])
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'' || c == '`':
			quote, literal = c, false
			text.WriteRune(c)
		case c == '{' || (c == '$' && i+1 < len(runes) && runes[i+1] == '{'):
			start := i
			if c == '$' {
				i++
			}
			double := i+1 < len(runes) && runes[i+1] == '{'
			if double {
				i++
			}
			end := -1
			var inQuote rune
			for j := i + 1; j < len(runes) && runes[j] != '{'; j++ {
				r := runes[j]
				if inQuote != 0 {
					if r == '\\' {
						j++
					} else if r == inQuote {
						inQuote = 0
					}
					continue
				}
				if r == '"' || r == '\'' {
					inQuote = r
					continue
				}
				if r == '}' {
					end = j
					break
				}
			}
			inner := ""
			if end > 0 {
				inner = strings.TrimSpace(string(runes[i+1 : end]))
			}
			if end < 0 || inner == "" || strings.ContainsAny(inner, ":,") {
				// No value between braces (or a map literal's key: value).
				text.WriteString(string(runes[start : i+1]))
				continue
			}
			if double && end+1 < len(runes) && runes[end+1] == '}' {
				end++
			}
			if text.Len() > 0 {
				parts = append(parts, templatePart{text: text.String()})
				text.Reset()
			}
			parts = append(parts, templatePart{text: inner, value: true})
			ok = true
			i = end
		default:
			text.WriteRune(c)
		}
	}
	if text.Len() > 0 {
		parts = append(parts, templatePart{text: text.String()})
	}
	if literal {
		for _, p := range parts {
			if !p.value && strings.ContainsAny(p.text, "+()[]") {
				literal = false
			}
		}
	}
	return parts, literal, ok
}

// warnTemplateTexts warns of each text written in quotes in the field
// key's expression (root, compiled with opts) that reads as a template
// whose braces hold a value the mapping could give: '"DS-{deal.id}"'
// loads, and is the same text for every deal (an invoice reference
// that does not change made every deal's invoice look like the first's).
// The warning gives the rewrite. Braces around what is no expression of
// the mapping ("{}", "{customer}" when there is no such value) are text.
func (p *parser) warnTemplateTexts(n *yaml.Node, key string, root ast.Node, opts []expr.Option) {
	seen := map[string]bool{}
	ast.Find(root, func(node ast.Node) bool {
		str, ok := node.(*ast.StringNode)
		if !ok || seen[str.Value] || !strings.ContainsRune(str.Value, '{') {
			return false
		}
		seen[str.Value] = true
		parts, literal, ok := templateParts(str.Value)
		if !ok || !literal {
			return false
		}
		var b strings.Builder
		values := 0
		for i, part := range parts {
			if i > 0 {
				b.WriteString(" + ")
			}
			if !part.value {
				b.WriteString(strconv.Quote(part.text))
				continue
			}
			if _, err := expr.Compile(part.text, opts...); err != nil {
				return false
			}
			values++
			if compilesToString(part.text, opts) {
				b.WriteString(part.text)
			} else {
				b.WriteString("string(" + part.text + ")")
			}
		}
		if values == 0 {
			return false
		}
		p.warn(n, key, "the text %s is the same for every deal: {…} in a text written in quotes puts no value in it; to join texts and values write %s",
			strconv.Quote(str.Value), b.String())
		return false
	})
}
