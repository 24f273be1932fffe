// promlint reads a Prometheus text exposition on stdin and checks it as `promtool check metrics` does:
// client_golang's parser (a malformed exposition is an error) and its linter (naming and help problems).
// It prints one problem per line and exits 1 if there are any, 2 if the input does not parse.
package main

import (
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

func main() {
	problems, err := promlint.New(os.Stdin).Lint()
	if err != nil {
		fmt.Fprintf(os.Stderr, "promlint: cannot parse the exposition: %v\n", err)
		os.Exit(2)
	}
	for _, p := range problems {
		fmt.Printf("%s: %s\n", p.Metric, p.Text)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
}
