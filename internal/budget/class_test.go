package budget

import (
	"context"
	"testing"
)

func TestClassTravelsInContext(t *testing.T) {
	t.Parallel()
	if got := ClassFrom(context.Background()); got != Foreground {
		t.Errorf("ClassFrom(no class) = %v, want foreground", got)
	}
	for _, c := range Classes {
		ctx := WithClass(t.Context(), c)
		if got := ClassFrom(ctx); got != c {
			t.Errorf("ClassFrom(WithClass(%v)) = %v", c, got)
		}
		if got := ClassFrom(context.WithoutCancel(ctx)); got != c {
			t.Errorf("ClassFrom(WithoutCancel(WithClass(%v))) = %v: the class must survive a detached context", c, got)
		}
	}
	if got := ClassFrom(WithClass(t.Context(), Class(200))); got != Foreground {
		t.Errorf("ClassFrom(out of range) = %v, want foreground", got)
	}
	for i := 1; i < len(Classes); i++ {
		if Classes[i-1] >= Classes[i] {
			t.Errorf("classes not in priority order: %v before %v", Classes[i-1], Classes[i])
		}
	}
	names := map[string]bool{}
	for _, c := range Classes {
		names[c.String()] = true
	}
	if len(names) != len(Classes) || names["unknown"] {
		t.Errorf("class names %v are not distinct", names)
	}
}
