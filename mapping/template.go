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
// is no text given to string(), or a value alone without its braces
// (`{deal.id}`: `deal.id`). "" when src has no such braces.
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
	if len(parts) == 1 {
		// The value alone, {deal.id}: it needs no braces, of any type
		// (quantity: {item.quantity}).
		if _, err := expr.Compile(parts[0].text, opts...); err == nil {
			return fmt.Sprintf("; an expression is no template: write the value without braces, %s: '%s' (the whole YAML value in single quotes)",
				field, strings.ReplaceAll(parts[0].text, "'", "''"))
		}
		return general
	}
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

// flowMapHint is the problem of the field key whose value, written
// without quotes, starts with a brace: YAML reads `reference: {deal.id}`
// as a map, {"deal.id": null}, not as a text, so the field is no
// expression. It says so, with the rewrite of templateHint (with the
// options of env) when the map, as written on the line of n, reads as a
// template.
func (p *parser) flowMapHint(n *yaml.Node, key string, env envKind) {
	text := ""
	if n.Line >= 1 && n.Line <= len(p.lines) {
		line := []rune(strings.TrimSuffix(p.lines[n.Line-1], "\r"))
		if n.Column >= 1 && n.Column <= len(line) {
			rest := string(line[n.Column-1:])
			if end := closingBrace(rest); end > 0 {
				text = string([]rune(rest)[:end+1])
			}
		}
	}
	what, hint := "the value", ""
	if text != "" {
		what = text
		hint = templateHint(text, key, p.m.options(env, false))
	}
	if hint == "" {
		hint = fmt.Sprintf("; quote the whole expression (`%s: '…'`)", key[strings.LastIndex(key, ".")+1:])
	}
	p.at(n, key, "YAML reads %s as a map, not as an expression: a value without quotes that starts with { is one%s", what, hint)
}

// closingBrace is the index, in characters, of the } that closes the {
// s starts with (quotes and nested braces skipped); -1 when s does not
// start with { or the line does not close it.
func closingBrace(s string) int {
	rs := []rune(s)
	if len(rs) == 0 || rs[0] != '{' {
		return -1
	}
	depth := 0
	var quote rune
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote != 0:
			if r == '\\' && quote == '"' {
				i++
			} else if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			quote = r
		case r == '{':
			depth++
		case r == '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// hintOptions are the options of an expression of the field key, for a
// hint of a file that YAML cannot read (no lookup table declared).
func hintOptions(key string) []expr.Option {
	env := envHeader
	switch {
	case key == "trigger":
		env = envTrigger
	case strings.HasPrefix(key, "invoice.lines."):
		env = envLine
	}
	return (&File{rounding: roundHalfUp, lookups: map[string]*lookupTable{}}).options(env, false)
}
