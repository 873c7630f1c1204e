package callers

import (
	"testing"
)

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		policy  Policy
		wantErr bool
	}{
		{"procedure", Policy{Procedures: map[string]Access{"/a.B/C": AccessAdmin}}, false},
		{"no leading slash", Policy{Procedures: map[string]Access{"a.B/C": AccessAdmin}}, true},
		{"service only", Policy{Procedures: map[string]Access{"/a.B": AccessAdmin}}, true},
		{"empty method", Policy{Procedures: map[string]Access{"/a.B/": AccessAdmin}}, true},
		{"empty service", Policy{Procedures: map[string]Access{"//C": AccessAdmin}}, true},
		{"three segments", Policy{Procedures: map[string]Access{"/a/B/C": AccessAdmin}}, true},
		{"partial wildcard", Policy{Procedures: map[string]Access{"/a.B/Get*": AccessAdmin}}, true},
		{"unknown access", Policy{Procedures: map[string]Access{"/a.B/C": Access(9)}}, true},
		{"unknown unmatched", Policy{Unmatched: Access(-1)}, true},
	}
	for _, tt := range tests {
		err := tt.policy.validate()
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: validate() = %v, want error %v", tt.name, err, tt.wantErr)
		}
	}
}

func TestNewConfig(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{}); err == nil {
		t.Error("New with neither path nor open: got nil error")
	}
	if _, err := New(Config{Path: "callers.json", Open: true}); err == nil {
		t.Error("New with both path and open: got nil error")
	}
	if _, err := New(Config{Open: true, Policy: Policy{Procedures: map[string]Access{"bad": AccessOpen}}}); err == nil {
		t.Error("New with a bad policy: got nil error")
	}
	if _, err := New(Config{Open: true}); err == nil {
		t.Error("New without a policy: got nil error")
	}
	if _, err := New(Config{Open: true, Policy: Policy{Procedures: map[string]Access{"/a.B/*": AccessReader}}}); err != nil {
		t.Errorf("New(open) with a policy: %v", err)
	}
}
