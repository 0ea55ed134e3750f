package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/dealsync/dealsync/internal/testdocs"
	"github.com/dealsync/dealsync/rerun"
)

// docFiles are the Markdown files a user reads: the README, docs/ and the
// examples' notes.
func docFiles(t *testing.T) []string {
	t.Helper()
	return testdocs.Files(t, "../..", "docs", "examples")
}

// codeSnippets are the inline code spans (which may run over a line
// break) and the lines of fenced code blocks of a Markdown file, each with
// the line it starts on: where the docs write commands.
func codeSnippets(text string) (snippets []string, lines []int) {
	all := strings.Split(text, "\n")
	prose := make([]string, len(all)) // the text with fenced code blanked
	fenced := false
	for i, line := range all {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			snippets, lines = append(snippets, line), append(lines, i+1)
			continue
		}
		prose[i] = line
	}
	// A span opens with a run of backticks and closes with a run of the
	// same length (`` ` `` is a backtick), within its paragraph.
	start := 1 // the line a paragraph starts on
	for _, para := range strings.Split(strings.Join(prose, "\n"), "\n\n") {
		for i := 0; i < len(para); {
			if para[i] != '`' {
				i++
				continue
			}
			n := 1
			for i+n < len(para) && para[i+n] == '`' {
				n++
			}
			end := closingRun(para, i+n, n)
			if end < 0 {
				i += n // a literal run
				continue
			}
			snippets = append(snippets, para[i+n:end])
			lines = append(lines, start+strings.Count(para[:i], "\n"))
			i = end + n
		}
		start += strings.Count(para, "\n") + 2
	}
	return snippets, lines
}

// closingRun is where in s, from i on, a run of exactly n backticks
// starts, or -1.
func closingRun(s string, i, n int) int {
	for i < len(s) {
		if s[i] != '`' {
			i++
			continue
		}
		m := 1
		for i+m < len(s) && s[i+m] == '`' {
			m++
		}
		if m == n {
			return i
		}
		i += m
	}
	return -1
}

// docFlag is a flag as the docs write it: --name, --name=value, or
// --name followed by punctuation.
var docFlag = regexp.MustCompile(`^--([a-z][a-z0-9-]*)`)

// commandsIn finds, in one snippet, each `dealsync SUB… --flag…` (the
// binary by any path: dealsync, ./dealsync, go run ./cmd/dealsync) and
// returns what of it the command tree does not have: a subcommand of a
// command that has subcommands, or a flag of the command named.
func commandsIn(root *cobra.Command, snippet string) []string {
	tokens := strings.Fields(snippet)
	var wrong []string
	for i := 0; i < len(tokens); i++ {
		if filepath.Base(tokens[i]) != "dealsync" {
			continue
		}
		cmd, path := root, "dealsync"
		j := i + 1
		for ; j < len(tokens); j++ {
			var sub *cobra.Command
			for _, c := range cmd.Commands() {
				if c.Name() == tokens[j] {
					sub = c
				}
			}
			if sub == nil {
				break
			}
			cmd, path = sub, path+" "+tokens[j]
		}
		// A placeholder (dealsync <group> <typo> --flag): nothing to check.
		if j < len(tokens) && strings.HasPrefix(tokens[j], "<") {
			continue
		}
		// A word right after the binary that is no command of it: a
		// command the docs name that does not exist (prose such as
		// "dealsync dev's" is not a code snippet's).
		if cmd == root && j < len(tokens) && regexp.MustCompile(`^[a-z]+$`).MatchString(tokens[j]) {
			wrong = append(wrong, "no command "+path+" "+tokens[j])
			continue
		}
		if cmd.HasSubCommands() && j < len(tokens) && regexp.MustCompile(`^[a-z]+$`).MatchString(tokens[j]) {
			wrong = append(wrong, "no command "+path+" "+tokens[j])
			continue
		}
		// Its flags: up to the end of the command (a pipe, a list, a
		// comment, another command of the binary).
		for ; j < len(tokens); j++ {
			tok := strings.TrimLeft(tokens[j], "[(")
			if tok == "|" || tok == "&&" || tok == "||" || tok == ";" || tok == "&" || strings.HasPrefix(tok, "#") || filepath.Base(tok) == "dealsync" {
				break
			}
			m := docFlag.FindStringSubmatch(tok)
			if m == nil || m[1] == "help" {
				continue
			}
			if cmd.Flags().Lookup(m[1]) == nil && cmd.InheritedFlags().Lookup(m[1]) == nil {
				wrong = append(wrong, path+" has no flag --"+m[1])
			}
		}
		i = j - 1
	}
	return wrong
}

// Every dealsync command and flag the README and the docs write in code
// exists: a renamed flag or command fails here, not in a user's shell.
func TestDocsNameOnlyCommandsAndFlagsThatExist(t *testing.T) {
	root := newRoot()
	checked := 0
	for _, f := range docFiles(t) {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		snippets, lines := codeSnippets(string(text))
		for k, s := range snippets {
			if !strings.Contains(s, "dealsync") {
				continue
			}
			checked++
			for _, w := range commandsIn(root, s) {
				t.Errorf("%s:%d: %s (in %q)", strings.TrimPrefix(f, "../../"), lines[k], w, s)
			}
		}
	}
	if checked < 50 {
		t.Fatalf("only %d snippets name dealsync: the docs were not found or not read", checked)
	}
}

// The check above finds what it should: a flag and a command that do not
// exist, and passes what does.
func TestCommandsInFindsWhatDoesNotExist(t *testing.T) {
	root := newRoot()
	for snippet, want := range map[string]string{
		"dealsync runs list --limit 5 --dev":              "",
		"go run ./cmd/dealsync runs retry --writeback":    "",
		"./dealsync config check --crm --config x.yaml":   "",
		"dealsync runs list --limits 5":                   "dealsync runs list has no flag --limits",
		"dealsync runs lists":                             "no command dealsync runs lists",
		"dealsync deploy":                                 "no command dealsync deploy",
		"dealsync dev | tee log --not-a-dealsync-flag":    "",
		"dealsync bench --baseline=local,calls --keep":    "",
		"dealsync webhook send --connection demo --nope]": "dealsync webhook send has no flag --nope",
		"dealsync <group> <typo> --flag":                  "",
	} {
		got := strings.Join(commandsIn(root, snippet), "; ")
		if got != want {
			t.Errorf("%q: %q, want %q", snippet, got, want)
		}
	}
	// Spans as CommonMark reads them: a double-backtick span holds a
	// backtick, a lone backtick is text, a span may run over a line break
	// but not over a paragraph.
	text := "a `` ` `` b `dealsync runs\nlist --nope` c\n\n` lone\n\nx `dealsync dev`"
	got, at := codeSnippets(text)
	if want := []string{" ` ", "dealsync runs\nlist --nope", "dealsync dev"}; !slices.Equal(got, want) || !slices.Equal(at, []int{1, 1, 6}) {
		t.Errorf("codeSnippets: %q at %v, want %q at [1 1 6]", got, at, want)
	}
}

// The table of failures in docs/operations.md ("What a failure means and
// what to do") names each type --failure takes (rerun.FailureTypes), and
// no other: a type added in code without its row, or a row of a type
// --failure refuses, fails here.
func TestDocsFailureTableNamesTheFailureTypes(t *testing.T) {
	text, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(text), "\n## What a failure means and what to do\n")
	if !ok {
		t.Fatal("no section What a failure means and what to do")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	typeName := regexp.MustCompile("`([A-Z][A-Za-z]+)`")
	var documented []string
	for line := range strings.Lines(section) {
		first, ok := strings.CutPrefix(line, "| ")
		if !ok {
			continue
		}
		first, _, _ = strings.Cut(first, " |")
		for _, m := range typeName.FindAllStringSubmatch(first, -1) {
			documented = append(documented, m[1])
		}
	}
	slices.Sort(documented)
	if !slices.Equal(documented, rerun.FailureTypes) {
		t.Errorf("the table names the failure types %v;\nrerun.FailureTypes (what --failure takes) are %v", documented, rerun.FailureTypes)
	}
}
