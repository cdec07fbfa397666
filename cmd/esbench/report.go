package main

import (
	_ "embed"
	"fmt"
	"io"
	"math"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
)

// The targets the report checks.
const (
	rawTarget      = 0.85                   // recorder appends and reads against the raw driver loop
	postgresTarget = 0.95                   // PostgreSQL single-event appends (both orderings) and xid log pages against raw
	groupTarget    = 8.0                    // SQLite, 16 writers at synchronous FULL against one writer
	orderingTarget = 2.0                    // PostgreSQL, 16 writers: the xid ordering against the table lock
	flatTarget     = 1.2                    // snapshot-bounded loads, 10,000 events against 1,000 (time)
	latencyBound   = 100 * time.Millisecond // a subscription delivers a new event within about this
	loopTarget     = 0.8                    // projections and process applications catching up: against a hand-written loop
	batchTarget    = 10.0                   // and against themselves committing one event per transaction
	codecTarget    = 1.5                    // loads of 1,000 events: the default codec against encoding/json's
	mapperTarget   = 4 * time.Microsecond   // the Mapper's AES-GCM encode + decode of the small event
	keyTarget      = 1.25                   // that round trip with data keys from the cache against a single key (time)
)

// section is one scenario of the report. Its exported fields are what report.md.tmpl reads.
type section struct {
	Name      string // the scenario's -only name, which names its prose in report.md.tmpl
	Title     string
	Vars      map[string]any // the values its prose quotes
	Tables    []*table
	Ran       bool  // false: excluded by -only
	PGSkipped bool  // its PostgreSQL cases were skipped
	Err       error // the scenario failed; what it measured before is kept
	targets   []target
}

// table adds a table to the section, below the prose named caption (none when "").
func (s *section) table(caption string, header ...string) *table {
	t := &table{Caption: caption, header: header}
	s.Tables = append(s.Tables, t)
	return t
}

// target adds a target to the section's and returns it.
func (s *section) target(t target) *target {
	s.targets = append(s.targets, t)
	return &t
}

// skipped notes that the section's PostgreSQL cases are skipped, and says whether they are.
func (s *section) skipped(e *env) bool {
	s.PGSkipped = s.PGSkipped || e.pg == nil
	return e.pg == nil
}

type table struct {
	Caption string // the name of the prose above it in report.md.tmpl
	header  []string
	rows    [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

var cmpHeader = []string{"Case", "Figure (median)", "Spread (min – max)", "Baseline", "Baseline (median)", "Ratio (median, range)", "Target", "Result"}

// cmp adds a figure beside its baseline. r is the ratio per run (above 1: the figure is better); tgt,
// when set, the target it is judged by.
func (t *table) cmp(label, baseLabel string, fig, base benchkit.Series, f func(float64) string, r benchkit.Series, tgt *target) {
	t.add(label, f(fig.Median()), spread(fig, f), baseLabel, f(base.Median()), ratioCell(r), tgt.required(), tgt.verdict())
}

// latencyHeader is the header of a table of latencies beside the p50s of a baseline, base, with the
// bound or target want.
func latencyHeader(base, want string) []string {
	return []string{"Case", "Samples", "p50 (median of runs)", "p50 spread", "p99 (median of runs)", "p99 spread",
		"p99 / max, all samples", "Baseline p50 (" + base + ")", "Ratio p50 (baseline ÷ figure)", want, "Result"}
}

// latency adds the latencies l beside the p50s of a baseline (none when nil), judged by tgt when set.
func (t *table) latency(label string, l benchkit.LatencySeries, base benchkit.Series, tgt *target) {
	t.add(label, strconv.Itoa(len(l.All)), fmtSeconds(l.P50.Median()), spread(l.P50, fmtSeconds),
		fmtSeconds(l.P99.Median()), spread(l.P99, fmtSeconds),
		fmtSeconds(benchkit.Percentile(l.All, 0.99).Seconds())+" / "+fmtSeconds(slices.Max(l.All).Seconds()),
		fmtSeconds(base.Median()), ratioCell(benchkit.Ratio(base, l.P50)), tgt.required(), tgt.verdict())
}

// target is a bound checked against a measured series (a ratio, a time).
type target struct {
	what   string
	got    benchkit.Series // per-round values; the median decides
	want   float64         // the bound
	atMost bool            // got must be <= want (else >= want)
	format func(float64) string
}

func (t target) fmt(x float64) string {
	if t.format != nil {
		return t.format(x)
	}
	return fmtRatio(x)
}

func (t *target) required() string {
	if t == nil {
		return "–"
	}
	if t.atMost {
		return "≤ " + t.fmt(t.want)
	}
	return "≥ " + t.fmt(t.want)
}

func (t target) met() bool {
	m := t.got.Median()
	if t.atMost {
		return m <= t.want
	}
	return m >= t.want
}

// verdict says whether the median meets the bound and, if not, by how much it misses; it also says
// when the runs' spread straddles the bound, so a borderline result is not read as a firm one.
func (t *target) verdict() string {
	if t == nil {
		return "–"
	}
	m := t.got.Median()
	v := "met"
	switch {
	case math.IsNaN(m):
		return "not measured"
	case t.met():
	case t.atMost:
		v = fmt.Sprintf("**missed**: %s over (%s above the bound)", t.fmt(m-t.want), pct((m-t.want)/t.want*100))
	default:
		v = fmt.Sprintf("**missed** by %s (%s short)", pct((t.want-m)/t.want*100), t.fmt(t.want-m))
	}
	if len(t.got) > 1 && t.got.Min() < t.want && t.got.Max() > t.want {
		v += "; runs straddle the bound"
	}
	return v
}

//go:embed report.md.tmpl
var reportText string

// writeReport writes the report: report.md.tmpl filled in, its paragraphs reflowed (see reflow).
func writeReport(w io.Writer, cfg config, m [][]string, e *env, secs []*section, took time.Duration, start time.Time) error {
	summary := &table{header: []string{"Scenario", "Target", "Measured (median, range over runs)", "Required", "Result"}}
	met := 0
	for _, s := range secs {
		for _, t := range s.targets {
			summary.add(strings.Fields(s.Title)[0], t.what, t.fmt(t.got.Median())+" ("+spread(t.got, t.fmt)+")", t.required(), t.verdict())
			if t.met() {
				met++
			}
		}
	}
	var tmpl *template.Template
	prose := func(name string, data any) (string, error) { // a scenario's text, "" where it has none
		var b strings.Builder
		if tmpl.Lookup(name) == nil {
			return "", nil
		}
		err := tmpl.ExecuteTemplate(&b, name, data)
		return b.String(), err
	}
	tmpl, err := template.New("report").Option("missingkey=error").Funcs(template.FuncMap{
		"prose": prose, "table": tableText, "commas": func(n int) string { return commas(int64(n)) },
	}).Parse(reportText)
	if err != nil {
		return err
	}
	var b strings.Builder
	err = tmpl.Execute(&b, map[string]any{
		"Args": strings.Join(cfg.args, " "), "Start": start.UTC().Format("2006-01-02 15:04 UTC"), "Took": took.Round(time.Second),
		"Quick": cfg.quick, "Machine": &table{header: []string{"", ""}, rows: m}, "Runs": cfg.runs, "HalfChunk": cfg.chunk / 2,
		"Cores": runtime.NumCPU(), "Summary": summary, "Targets": len(summary.rows), "Met": met, "PGSkip": e.pgSkip, "Sections": secs,
		"RawTarget": rawTarget, "PostgresTarget": postgresTarget, "OrderingTarget": orderingTarget, "GroupTarget": groupTarget, "FlatTarget": flatTarget,
		"LatencyBound": fmtSeconds(latencyBound.Seconds()), "LoopTarget": loopTarget, "BatchTarget": batchTarget, "CodecTarget": codecTarget, "MapperTarget": fmtSeconds(mapperTarget.Seconds()), "KeyTarget": keyTarget,
	})
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, reflow(b.String()))
	return err
}

// reflow makes each paragraph of text one line and separates blocks (paragraphs, headings, tables) by
// one blank line, so that the template wraps its prose for its readers and the report has a line per
// paragraph. A block whose first line starts with "|" is a table and stays as it is.
func reflow(text string) string {
	var out []string
	for block := range strings.SplitSeq(regexp.MustCompile(`\n[ \t]*\n\s*`).ReplaceAllString(strings.TrimSpace(text), "\n\n"), "\n\n") {
		if !strings.HasPrefix(block, "|") {
			block = strings.Join(strings.Fields(block), " ")
		}
		out = append(out, block)
	}
	return strings.Join(out, "\n\n") + "\n\n"
}

// tableText renders t in Markdown.
func tableText(t *table) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| %s |\n|---|%s\n", strings.Join(t.header, " | "), strings.Repeat("--:|", len(t.header)-1))
	for _, r := range t.rows {
		cells := make([]string, len(t.header))
		for i := range cells {
			if i < len(r) {
				cells[i] = strings.ReplaceAll(r[i], "|", `\|`)
			}
		}
		fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | "))
	}
	return b.String()
}

// Formatting. Figures carry three significant digits: the runs rarely agree on more.

func sig3(x float64) string {
	switch a := math.Abs(x); {
	case math.IsNaN(x):
		return "–"
	case a >= 1000:
		return commas(int64(math.Round(x)))
	case a >= 1: // two decimals from 1, one from 10, none from 100
		return strconv.FormatFloat(x, 'f', 2-int(math.Log10(a)), 64)
	default:
		return strconv.FormatFloat(x, 'g', 3, 64)
	}
}

func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return commas(int64(n)) + " " + what + "s"
}

// scaled formats x in the first unit whose size it reaches (sizes from the largest down; the last is
// taken for anything smaller).
func scaled(x float64, units []string, sizes []float64) string {
	i := 0
	for i < len(sizes)-1 && math.Abs(x) < sizes[i] {
		i++
	}
	if math.IsNaN(x) {
		return "–"
	}
	return sig3(x/sizes[i]) + " " + units[i]
}

func fmtSeconds(s float64) string {
	if s == 0 {
		return "0"
	}
	return scaled(s, []string{"s", "ms", "µs", "ns"}, []float64{1, 1e-3, 1e-6, 1e-9})
}

func fmtBytes(b float64) string {
	return scaled(b, []string{"MiB", "KiB", "B"}, []float64{1 << 20, 1 << 10, 1})
}

func fmtRate(unit string) func(float64) string {
	return func(r float64) string { return sig3(r) + " " + unit }
}

func fmtRatio(x float64) string {
	switch {
	case math.IsNaN(x) || math.IsInf(x, 0):
		return "–"
	case x >= 10:
		return strconv.FormatFloat(x, 'f', 1, 64) + "×"
	case x != 0 && math.Abs(x) < 0.1:
		return strconv.FormatFloat(x, 'g', 2, 64) + "×"
	}
	return strconv.FormatFloat(x, 'f', 2, 64) + "×"
}

func pct(x float64) string {
	if x < 10 {
		return strconv.FormatFloat(x, 'f', 1, 64) + "%"
	}
	return strconv.FormatFloat(x, 'f', 0, 64) + "%"
}

// spread formats the runs' range with f.
func spread(s benchkit.Series, f func(float64) string) string {
	if len(s) == 0 {
		return "–"
	}
	return f(s.Min()) + " – " + f(s.Max())
}

// ratioCell formats a ratio's median with its range over runs; "–" for none.
func ratioCell(s benchkit.Series) string {
	if len(s) == 0 {
		return "–"
	}
	return fmtRatio(s.Median()) + " (" + fmtRatio(s.Min()) + " – " + fmtRatio(s.Max()) + ")"
}
