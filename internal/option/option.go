// Package option applies the module's functional options as the root package's documentation
// ("Options and lifecycles") says every package does: in order, skipping nil ones.
package option

// Apply calls every option in opts that is not nil on c, in order.
func Apply[C any, O ~func(*C)](c *C, opts []O) {
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
}
