package health

import "time"

// SetGrace changes how long a dependency never usable yet is only waited for.
func (c *Checker) SetGrace(d time.Duration) { c.grace = d }

// SetInterval changes how often Run probes once every probe has passed.
func (c *Checker) SetInterval(d time.Duration) { c.interval = d }
