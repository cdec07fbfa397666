package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// section is one scenario of the report.
type section struct {
	name   string // the scenario's -only name
	title  string
	intro  string // what is measured and against what
	tables []table
	notes  []string
	err    error // the scenario failed; what it measured before is kept
}

type table struct {
	caption string
	header  []string
	rows    [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

// target is one of issue 5's targets (or a design rule), checked against a measured ratio.
type target struct {
	section string
	what    string
	got     series  // per-round values; the median decides
	want    float64 // the bound
	atMost  bool    // got must be <= want (else >= want)
	unit    string  // "×" or a time unit handled by format
	format  func(float64) string
	note    string
}

func (t target) fmt(x float64) string {
	if t.format != nil {
		return t.format(x)
	}
	return fmtRatio(x)
}

func (t target) required() string {
	if t.atMost {
		return "≤ " + t.fmt(t.want)
	}
	return "≥ " + t.fmt(t.want)
}

func (t target) met() bool {
	m := t.got.median()
	if t.atMost {
		return m <= t.want
	}
	return m >= t.want
}

// verdict says whether the median meets the bound and, if not, by how much it misses; it also says
// when the runs' spread straddles the bound, so a borderline result is not read as a firm one.
func (t target) verdict() string {
	m := t.got.median()
	var v string
	if math.IsNaN(m) {
		return "not measured"
	}
	if t.met() {
		v = "met"
	} else {
		var short float64
		if t.atMost {
			short = (m - t.want) / t.want * 100
			v = fmt.Sprintf("**missed**: %s over (%s above the bound)", t.fmt(m-t.want), pct(short))
		} else {
			short = (t.want - m) / t.want * 100
			v = fmt.Sprintf("**missed** by %s (%s short)", pct(short), t.fmt(t.want-m))
		}
	}
	lo, hi := t.got.min(), t.got.max()
	if len(t.got) > 1 && lo < t.want && hi > t.want {
		v += "; runs straddle the bound"
	}
	return v
}

func pct(x float64) string {
	if x < 10 {
		return strconv.FormatFloat(x, 'f', 1, 64) + "%"
	}
	return strconv.FormatFloat(x, 'f', 0, 64) + "%"
}

// Formatting. Figures carry three significant digits: the runs rarely agree on more.

func sig3(x float64) string {
	switch a := math.Abs(x); {
	case math.IsNaN(x):
		return "–"
	case a >= 1000:
		return commas(int64(math.Round(x)))
	case a >= 100:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(x, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(x, 'f', 2, 64)
	default:
		return strconv.FormatFloat(x, 'g', 3, 64)
	}
}

func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// fmtSeconds formats seconds as ns, µs, ms or s.
func fmtSeconds(s float64) string {
	switch a := math.Abs(s); {
	case math.IsNaN(s):
		return "–"
	case a == 0:
		return "0"
	case a < 1e-6:
		return sig3(s*1e9) + " ns"
	case a < 1e-3:
		return sig3(s*1e6) + " µs"
	case a < 1:
		return sig3(s*1e3) + " ms"
	default:
		return sig3(s) + " s"
	}
}

func fmtRate(r float64, unit string) string { return sig3(r) + " " + unit }

func fmtRatio(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "–"
	}
	if x >= 10 {
		return strconv.FormatFloat(x, 'f', 1, 64) + "×"
	}
	if x != 0 && math.Abs(x) < 0.1 {
		return strconv.FormatFloat(x, 'g', 2, 64) + "×"
	}
	return strconv.FormatFloat(x, 'f', 2, 64) + "×"
}

func fmtBytes(b float64) string {
	switch a := math.Abs(b); {
	case math.IsNaN(b):
		return "–"
	case a < 1024:
		return sig3(b) + " B"
	case a < 1<<20:
		return sig3(b/1024) + " KiB"
	default:
		return sig3(b/(1<<20)) + " MiB"
	}
}

// spread formats the runs' range with f.
func spread(s series, f func(float64) string) string {
	if len(s) == 0 {
		return "–"
	}
	return f(s.min()) + " – " + f(s.max())
}

// ratioCell formats a ratio's median with its range over runs.
func ratioCell(s series) string {
	return fmtRatio(s.median()) + " (" + fmtRatio(s.min()) + " – " + fmtRatio(s.max()) + ")"
}

func writeTable(w io.Writer, t table) {
	if t.caption != "" {
		fmt.Fprintf(w, "%s\n\n", t.caption)
	}
	fmt.Fprintf(w, "| %s |\n", strings.Join(t.header, " | "))
	seps := make([]string, len(t.header))
	for i := range seps {
		seps[i] = "---"
		if i > 0 {
			seps[i] = "--:"
		}
	}
	fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
	for _, r := range t.rows {
		cells := make([]string, len(t.header))
		copy(cells, r)
		for i := range cells {
			cells[i] = strings.ReplaceAll(cells[i], "|", `\|`)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	fmt.Fprintln(w)
}
