package conformance

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// Exception is a test Prism passes and Gale does not, and why.
type Exception struct {
	Reason string
	// Runners are the Gale runners it applies to; nil means all.
	Runners []string
}

func (e Exception) applies(runner string) bool {
	return e.Runners == nil || slices.Contains(e.Runners, runner)
}

// Verdict returns what the table shows wrong: a test Prism passes that a
// Gale runner does not and that known does not excuse, and an entry of
// known that every runner it names now passes.
func Verdict(t *Table, known map[string]Exception) []string {
	var problems []string
	for _, row := range t.Rows {
		if row.Results[prismName(t)].Outcome != Pass {
			continue
		}
		exc, listed := known[row.ID()]
		stale := listed
		for _, r := range t.Runners {
			if !r.Gale {
				continue
			}
			res := row.Results[r.Name]
			excused := listed && exc.applies(r.Name)
			switch {
			case res.Outcome != Pass && !excused:
				problems = append(problems, fmt.Sprintf("%s: passes on Prism, %s on %s: %s", row.ID(), res.Outcome, r.Name, res.Detail))
			case res.Outcome != Pass && excused:
				stale = false
			}
		}
		if stale {
			problems = append(problems, fmt.Sprintf("%s: passes on Gale now; remove it from the known exceptions (%q)", row.ID(), exc.Reason))
		}
	}
	return problems
}

func prismName(t *Table) string {
	for _, r := range t.Runners {
		if !r.Gale {
			return r.Name
		}
	}
	return ""
}

// WriteMarkdown writes the table (test | one column per runner | note)
// and a summary per suite.
func WriteMarkdown(w io.Writer, t *Table, known map[string]Exception) {
	rows := slices.Clone(t.Rows)
	slices.SortStableFunc(rows, func(a, b *Row) int { return strings.Compare(a.ID(), b.ID()) })
	var names []string
	for _, r := range t.Runners {
		names = append(names, r.Name)
	}
	fmt.Fprintf(w, "| test | %s | note |\n|---|%s---|\n", strings.Join(names, " | "), strings.Repeat("---|", len(names)))
	for _, row := range rows {
		var cells []string
		for _, r := range t.Runners {
			cells = append(cells, cell(row.Results[r.Name].Outcome))
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", row.ID(), strings.Join(cells, " | "), escape(note(t, row, known)))
	}
	fmt.Fprintf(w, "\n| suite | tests | %s |\n|---|---|%s\n", strings.Join(names, " passed | ")+" passed", strings.Repeat("---|", len(names)))
	var suites []string
	count := map[string]map[string]int{}
	total := map[string]int{}
	for _, row := range rows {
		if count[row.Suite] == nil {
			suites = append(suites, row.Suite)
			count[row.Suite] = map[string]int{}
		}
		count[row.Suite][""]++
		total[""]++
		for _, r := range t.Runners {
			if row.Results[r.Name].Outcome == Pass {
				count[row.Suite][r.Name]++
				total[r.Name]++
			}
		}
	}
	line := func(name string, c map[string]int) {
		fmt.Fprintf(w, "| %s | %d |", name, c[""])
		for _, r := range t.Runners {
			fmt.Fprintf(w, " %d |", c[r.Name])
		}
		fmt.Fprintln(w)
	}
	for _, s := range suites {
		line(s, count[s])
	}
	line("**all**", total)
	if len(t.Excluded) > 0 {
		fmt.Fprintf(w, "\nNot run: %s.\n", strings.Join(t.Excluded, "; "))
	}
}

func cell(o Outcome) string {
	switch o {
	case Pass:
		return "pass"
	case Fail:
		return "**FAIL**"
	case "":
		return "-"
	}
	return string(o)
}

// note explains a row that is not all pass: the known exception's reason,
// else the first reason a runner gave.
func note(t *Table, row *Row, known map[string]Exception) string {
	if exc, ok := known[row.ID()]; ok {
		return exc.Reason
	}
	for _, r := range t.Runners {
		if res := row.Results[r.Name]; res.Outcome != Pass && res.Detail != "" {
			return r.Name + ": " + res.Detail
		}
	}
	return ""
}

func escape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
