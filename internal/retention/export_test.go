package retention

// LockKey is the advisory lock a run holds.
const LockKey = lockKey
