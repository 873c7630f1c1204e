package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestMaxPerWindow(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int, calls int) sample { return sample{t0.Add(time.Duration(s) * time.Second), calls} }
	tests := []struct {
		name    string
		samples []sample
		want    int
	}{
		{"one sample", []sample{at(0, 7)}, 0},
		{"shorter than the window", []sample{at(0, 5), at(10, 20), at(30, 50)}, 45},
		{"burst inside a later window", []sample{at(0, 0), at(30, 100), at(60, 100), at(90, 250), at(120, 260)}, 160},
		{"steady", []sample{at(0, 0), at(60, 60), at(120, 120), at(180, 180)}, 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := maxPerWindow(tt.samples, time.Minute); got != tt.want {
				t.Errorf("maxPerWindow = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestPercentileAndMerge(t *testing.T) {
	t.Parallel()
	ms := func(ns ...int) []time.Duration {
		var out []time.Duration
		for _, n := range ns {
			out = append(out, time.Duration(n)*time.Millisecond)
		}
		return out
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
	m := merge(
		stats{requests: 3, errors: 1, elapsed: time.Second, took: ms(1, 2, 9), started: 4},
		stats{requests: 2, elapsed: time.Second, took: ms(3, 4), started: 2},
	)
	got := []any{m.requests, m.errors, m.elapsed, m.started, m.p50, m.p99, m.rps()}
	want := []any{5, 1, 2 * time.Second, 6, 3 * time.Millisecond, 9 * time.Millisecond, 2.5}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("merge (-want +got):\n%s", diff)
	}
}

func TestParseOptionsRefusesBadFlags(t *testing.T) {
	t.Parallel()
	getenv := func(string) string { return "" }
	tests := []struct {
		args []string
		want string
	}{
		{nil, "-bin is required"},
		{[]string{"-bin", "x", "-users", "10"}, "-users must be at least 200"},
		{[]string{"-bin", "x", "-rounds", "0"}, "must be positive"},
		{[]string{"-bin", "x", "-duration", "0s"}, "durations must be positive"},
		{[]string{"-bin", "x", "-postgres-users", "5"}, "-postgres-users must be at least 100"},
	}
	for _, tt := range tests {
		_, err := parseOptions(tt.args, getenv, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseOptions(%q) = %v, want an error containing %q", tt.args, err, tt.want)
		}
	}
	o, err := parseOptions([]string{"-bin", "x"}, func(k string) string {
		return map[string]string{"DATABASE_URL": "postgres://db/one"}[k]
	}, io.Discard)
	if err != nil || o.databaseURL != "postgres://db/one" {
		t.Errorf("parseOptions with DATABASE_URL = %+v, %v; want its URL", o, err)
	}
}
