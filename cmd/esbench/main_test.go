package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
)

// TestQuickReport runs the program in -quick mode on memory and SQLite only (PostgreSQL is turned off,
// so the test does not depend on a server) and checks that the report has every section and that no
// scenario failed. It keeps the program compiling and working; its figures mean nothing.
func TestQuickReport(t *testing.T) {
	out := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	cfg, err := parseFlags([]string{"-quick", "-runs", "2", "-postgres", "off", "-out", out})
	if err != nil {
		t.Fatal(err)
	}
	var progress io.Writer = io.Discard
	if testing.Verbose() {
		progress = os.Stderr
	}
	failed, err := run(context.Background(), cfg, progress)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	report := string(b)
	if failed > 0 || strings.Contains(report, "**FAILED**") {
		t.Errorf("%d scenario(s) failed:\n%s", failed, report)
	}
	want := []string{
		"# Benchmarks", "## Machine", "## How to read this", "## Summary of targets",
		"PostgreSQL scenarios were skipped",
	}
	for _, sc := range scenarios() {
		want = append(want, "## "+sc.title)
	}
	for _, w := range want {
		if !strings.Contains(report, w) {
			t.Errorf("the report has no %q", w)
		}
	}
	// Every scenario produced a table, and the targets that need no PostgreSQL were judged.
	if n := strings.Count(report, "| Case |"); n < 5 {
		t.Errorf("the report has %d comparison tables, want at least 5", n)
	}
	for _, w := range []string{"SQLite FULL, 16 writers vs 1 writer", "snapshot-bounded load", "SQLite recorder, pages of 1,000 vs raw",
		"p99 delivery, SQLite FULL", "SQLite FULL projection runner vs hand-written loop", "SQLite FULL process application vs one event per transaction",
		"p50 applied, SQLite FULL, batched runner"} {
		if !strings.Contains(report, w) {
			t.Errorf("the summary has no target %q", w)
		}
	}
	// Every section opens with its introduction from report.md.tmpl, a paragraph of one line.
	for _, sc := range scenarios() {
		_, after, _ := strings.Cut(report, "## "+sc.title+"\n\n")
		if intro, _, _ := strings.Cut(after, "\n"); len(intro) < 200 || strings.HasPrefix(intro, "|") {
			t.Errorf("section %s opens with %q, not its introduction", sc.name, intro)
		}
	}
}

// TestReflow checks that reflow joins the lines of a paragraph, keeps tables as they are and leaves one
// blank line between blocks.
func TestReflow(t *testing.T) {
	in := "\n\n# Title\n\nA paragraph\n  wrapped   here.\n \n\n\n| a | b |\n|---|--:|\n| x  y | z |\n\nEnd.\n"
	want := "# Title\n\nA paragraph wrapped here.\n\n| a | b |\n|---|--:|\n| x  y | z |\n\nEnd.\n\n"
	if got := reflow(in); got != want {
		t.Errorf("reflow(%q) = %q, want %q", in, got, want)
	}
}

func TestParseFlags(t *testing.T) {
	t.Setenv("ES_POSTGRES_DSN", "")
	cfg, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.out != "BENCHMARKS.md" || cfg.pgDSN != defaultDSN || cfg.runs != 7 || cfg.quick || cfg.only != nil {
		t.Errorf("defaults: %+v", cfg)
	}
	t.Setenv("ES_POSTGRES_DSN", "postgres://x@y/z")
	if cfg, _ := parseFlags(nil); cfg.pgDSN != "postgres://x@y/z" {
		t.Errorf("ES_POSTGRES_DSN not taken: %q", cfg.pgDSN)
	}
	for _, bad := range [][]string{{"-runs", "0"}, {"-only", "("}, {"extra"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}

func TestTargetVerdict(t *testing.T) {
	for _, c := range []struct {
		t    target
		want string
	}{
		{target{got: benchkit.Series{0.9, 1.0, 1.1}, want: 0.85}, "met"},
		{target{got: benchkit.Series{0.6, 0.7, 0.9}, want: 0.85}, "**missed** by 18% (0.15× short); runs straddle the bound"},
		{target{got: benchkit.Series{1.5, 1.5, 1.5}, want: 1.2, atMost: true}, "**missed**: 0.30× over (25% above the bound)"},
		{target{got: benchkit.Series{1.0}, want: 1.2, atMost: true}, "met"},
	} {
		if got := c.t.verdict(); got != c.want {
			t.Errorf("verdict(%v) = %q, want %q", c.t.got, got, c.want)
		}
	}
}
