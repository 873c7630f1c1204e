package callers

import "testing"

func TestLimitsEffective(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   *Limits
		want Limits
	}{
		{"none", nil, Limits{DefaultWachtCallsPerMinute, DefaultConcurrentLoads}},
		{"rate only", &Limits{WachtCallsPerMinute: 30}, Limits{30, DefaultConcurrentLoads}},
		{"loads only", &Limits{ConcurrentLoads: 2}, Limits{DefaultWachtCallsPerMinute, 2}},
		{"both", &Limits{WachtCallsPerMinute: 600, ConcurrentLoads: 1}, Limits{600, 1}},
	}
	for _, tt := range tests {
		if got := tt.in.Effective(); got != tt.want {
			t.Errorf("%s: Effective() = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
