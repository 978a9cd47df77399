"""The text of ``ipvsadm-py -h`` (the full reference is docs/ipvsadm-py.md)."""

HELP = """\
Usage:
  {prog} -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe engine]
                                [-b sched-flags] [-o] [-j enable|disable]
  {prog} -D virtual-service
  {prog} -C
  {prog} -R                      < rules (ipvsadm -S / ipvsadm-py -S output)
  {prog} -S [-n]
  {prog} -a|e virtual-service -r server-address [-g|-m|-i|-b] [-w weight]
                                [-x upper] [-y lower] [tunnel options]
  {prog} -d virtual-service -r server-address
  {prog} -L|l [virtual-service] [options] [--json]
  {prog} -Z [virtual-service]
  {prog} --set tcp tcpfin udp
  {prog} --start-daemon {{master|backup}} [daemon-options]
  {prog} --stop-daemon {{master|backup}}
  {prog} -P|Q virtual-service -z local-address      (FULLNAT local addresses)
  {prog} -G [virtual-service] [-n] [--json]
  {prog} apply FILE [--format yaml|keepalived] [--dry-run] [--no-prune]
                   [--json] [--load]
  {prog} validate FILE [--format yaml|keepalived]
  {prog} export [-o FILE] [--format yaml|keepalived] [--no-sysctls]
  {prog} completion bash
  {prog} -h

Commands (the command comes first; short options may be bundled: -Ln):
  --add-service     -A        add virtual service with options
  --edit-service    -E        edit virtual service with options (unset options
                              return to their defaults, as with ipvsadm)
  --delete-service  -D        delete virtual service
  --clear           -C        clear the whole table
  --restore         -R        restore rules from stdin (pipelined)
  --save            -S        save rules to stdout
  --add-server      -a        add real server with options
  --edit-server     -e        edit real server with options
  --delete-server   -d        delete real server
  --list            -L|-l     list the table
  --zero            -Z        zero counters in a service or all services
  --set tcp tcpfin udp        set connection timeout values (0 = unchanged)
  --start-daemon              start connection sync daemon
  --stop-daemon               stop connection sync daemon
  --add-laddr       -P        add a FULLNAT local address to a service
  --del-laddr       -Q        delete a FULLNAT local address from a service
  --get-laddr       -G        list FULLNAT local addresses
  --help            -h        display this help message
  --version         -v        display the version

virtual-service:
  --tcp-service|-t  service-address   service-address is host[:port]
  --udp-service|-u  service-address   service-address is host[:port]
  --sctp-service    service-address   service-address is host[:port]
  --fwmark-service|-f fwmark          fwmark is an integer greater than zero
  (IPv6: [2001:db8::1]:80; port 0 or none needs -p)

Options:
  --ipv6         -6                   fwmark entry uses IPv6 (after -f)
  --scheduler    -s scheduler         one of rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|
                                      ovf|mh|twos; the default scheduler is wlc.
  --pe           engine               alternate persistence engine (sip), not set by default
  --persistent   -p [timeout]         persistent service (default timeout 360 s)
  --netmask      -M netmask           persistent granularity mask (IPv6: prefix length)
  --real-server  -r server-address    server-address is host (and port)
  --gatewaying   -g                   gatewaying (direct routing) (default)
  --ipip         -i                   ipip encapsulation (tunneling)
  --masquerading -m                   masquerading (NAT)
  --fullnat      -b                   FULLNAT (on -a/-e only; needs local addresses)
  --tun-type     type                 one of ipip|gue|gre, the default tunnel type is ipip
  --tun-port     port                 tunnel destination port (gue: required)
  --tun-nocsum                        tunnel encapsulation without checksum
  --tun-csum                          tunnel encapsulation with checksum
  --tun-remcsum                       tunnel encapsulation with remote checksum (gue)
  --weight       -w weight            capacity of real server (0-2147483647, default 1)
  --u-threshold  -x uthreshold        upper threshold of connections
  --l-threshold  -y lthreshold        lower threshold of connections
  --laddr        -z address           local address for -P/-Q
  --synproxy     -j enable|disable    SYN proxy of the service (on -A/-E)
  --connection   -c                   output of current IPVS connections
  --timeout                           output of timeout (tcp tcpfin udp)
  --daemon                            output of daemon information
  --stats                             output of statistics information
  --rate                              output of rate information
  --exact        -X                   expand numbers (display exact values)
  --thresholds                        output of thresholds information
  --persistent-conn                   output of persistent connection info
  --tun-info                          output of tunnel information
  --ext-stats                         output of the FULLNAT/SYNPROXY counters
  --nosort                            disable sorting output of service/server entries
  --sort                              does nothing, for backwards compatibility
  --ops          -o                   one-packet scheduling
  --numeric      -n                   numeric output of addresses and ports
  --sched-flags  -b flags             scheduler flags (comma-separated; on -A/-E):
                                      flag-1|flag-2|flag-3, sh-fallback|sh-port (sh),
                                      mh-fallback|mh-port (mh)
  --json                              listings as JSON (schema: docs/ipvsadm-py.md)
  --load                              load ip_vs (kmod) if it is not loaded

Daemon Options:
  --syncid sid                        syncid for connection sync (default=0)
  --sync-maxlen length                Max sync message length (default=1472)
  --mcast-interface interface         multicast interface for connection sync (default eth0)
  --mcast-group address               IPv4/IPv6 group (default=224.0.0.81)
  --mcast-port port                   UDP port (default=8848)
  --mcast-ttl ttl                     Multicast TTL (default=1)

Exit status: 0 done; 1 a listing failed; 2 bad input or IPVS not loaded;
255 the kernel refused the change (or the command line was not understood).
"""
