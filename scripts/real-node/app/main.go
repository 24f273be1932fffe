// A tiny workload for the real-node prototype: serves the standard gRPC health service (grpc.health.v1) on
// :8080 for the kubelet's gRPC readiness probe, and proves that the mounted volume (/workspace) is writable
// while the root filesystem is read-only.
package main

import (
	"fmt"
	"log"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	ws := os.Getenv("WORKSPACE")
	if ws == "" {
		ws = "/workspace"
	}
	stamp := fmt.Sprintf("uid=%d gid=%d at %s\n", os.Getuid(), os.Getgid(), time.Now().UTC().Format(time.RFC3339))
	if err := os.WriteFile(ws+"/hello.txt", []byte(stamp), 0o644); err != nil {
		log.Fatalf("workspace not writable: %v", err)
	}
	if err := os.WriteFile("/rootfs-probe", []byte("x"), 0o644); err == nil {
		log.Printf("WARNING: root filesystem is writable")
	} else {
		log.Printf("root filesystem read-only as expected: %v", err)
	}
	lis, err := net.Listen("tcp", ":8080")
	if err != nil {
		log.Fatal(err)
	}
	s := grpc.NewServer()
	h := health.NewServer()
	h.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, h)
	log.Printf("serving grpc health on :8080; wrote %s/hello.txt: %s", ws, stamp)
	log.Fatal(s.Serve(lis))
}
