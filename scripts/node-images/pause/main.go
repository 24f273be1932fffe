// A pause process for pod sandboxes (what registry.k8s.io/pause does, which cannot be pulled here):
// sleeps until SIGINT/SIGTERM, reaping any zombie children meanwhile (it is PID 1 of the pod's pid namespace
// when shareProcessNamespace is set).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s == syscall.SIGCHLD {
			for {
				pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
			continue
		}
		os.Exit(0)
	}
}
