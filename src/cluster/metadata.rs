//! The agents' meta-data: OCF 1.0-shaped XML with the DOCTYPE, so `ocf-tester` validates
//! it against `ra-api-1.dtd`, and `reload` advertised, so Pacemaker 2.1 runs the legacy
//! reload (not stop+start) when only parameters without `unique="1"` change
//! (cluster-integration §2.6).

/// One agent parameter as advertised.
pub struct Param {
    pub name: &'static str,
    pub unique: bool,
    pub required: bool,
    /// `string`, `integer` or `boolean` (the DTD's types).
    pub kind: &'static str,
    pub default: Option<&'static str>,
    pub short: &'static str,
    pub long: &'static str,
}

const fn p(
    name: &'static str,
    unique: bool,
    kind: &'static str,
    default: Option<&'static str>,
    short: &'static str,
    long: &'static str,
) -> Param {
    Param {
        name,
        unique,
        required: false,
        kind,
        default,
        short,
        long,
    }
}

/// The director agent's parameters: stock's two, then the inline virtual service, the
/// dynamic real-server sources, and how the daemon programs IPVS.
pub const DIRECTOR_PARAMS: &[Param] = &[
    p(
        "configfile",
        true,
        "string",
        Some("/etc/ha.d/ldirectord.cf"),
        "configuration file path",
        "The ldirectord configuration file (looked up as ldirectord does: /etc/ha.d/NAME, \
         /etc/ha.d/conf/NAME, then as given). Not used when vip is set. The file may use the \
         ldirectord-rs realsource= directives for dynamic real servers.",
    ),
    p(
        "ldirectord",
        false,
        "string",
        Some("/usr/sbin/ldirectord"),
        "ldirectord binary path",
        "The ldirectord program that runs the daemon (CONFIG start).",
    ),
    p(
        "vip",
        true,
        "string",
        None,
        "virtual IP address",
        "Define the virtual service from parameters instead of a configuration file: its \
         address (IPv4 or IPv6). Needs port.",
    ),
    p(
        "port",
        true,
        "integer",
        None,
        "virtual service port",
        "The virtual service port; real servers use the same port.",
    ),
    p(
        "protocol",
        false,
        "string",
        Some("tcp"),
        "tcp or udp",
        "The protocol of the virtual service defined by vip and port.",
    ),
    p(
        "virtual_service_options",
        false,
        "string",
        Some("-s rr"),
        "ipvsadm-style service options",
        "Options of the virtual service, as given to ipvsadm -A: -s SCHEDULER, -p [TIMEOUT], \
         -M NETMASK, -b FLAGS, -o.",
    ),
    p(
        "forwarding",
        false,
        "string",
        Some("gate"),
        "gate, masq or ipip",
        "How the director forwards to the real servers found by the sources: gate (direct \
         routing), masq (NAT) or ipip (tunnelling).",
    ),
    p(
        "default_weight",
        false,
        "integer",
        Some("1"),
        "weight of unlisted real servers",
        "The weight of a real server not named in weight_of_realservers.",
    ),
    p(
        "weight_of_realservers",
        false,
        "string",
        None,
        "host,weight list",
        "Space-separated HOST[,WEIGHT] items (e.g. node1,1 node2,2 192.168.0.234,0). Gives \
         weights; when no other source is set it is also the list of real servers.",
    ),
    p(
        "realserver_dependent_resource",
        false,
        "string",
        None,
        "real servers: nodes running this resource",
        "The real servers are the nodes where this resource (usually a clone) runs, from \
         crm_resource --locate.",
    ),
    p(
        "realserver_dependent_attribute_name",
        false,
        "string",
        None,
        "filter: node attribute name",
        "Keep only the nodes whose transient node attribute of this name matches \
         realserver_dependent_attribute_value (e.g. pgsql-status). No filter when empty.",
    ),
    p(
        "realserver_dependent_attribute_value",
        false,
        "string",
        Some("1"),
        "filter: extended regular expression",
        "Extended regular expression that must match the whole attribute value, e.g. \
         HS:sync|HS:potential|HS:async.",
    ),
    p(
        "realserver_dependent_attribute_fallback_value",
        false,
        "string",
        None,
        "filter when none matches: regular expression",
        "When no node's attribute matches realserver_dependent_attribute_value, the real \
         servers are the nodes whose attribute matches this instead (extension, e.g. \
         HS:alone: the hot standbys serve while a primary is elected). None when empty.",
    ),
    p(
        "realserver_get_real_servers_script",
        false,
        "string",
        None,
        "real servers: command printing the list",
        "A command whose standard output is the list of real servers (node names or \
         addresses, separated by white space). If it fails or prints nothing, the last good \
         list is kept.",
    ),
    p(
        "realserver_check_active_real_server_script",
        false,
        "string",
        None,
        "filter: command run per real server",
        "A command run with each candidate appended as its last argument; the candidate is \
         kept when the command prints exactly t.",
    ),
    p(
        "node_address_map",
        false,
        "string",
        None,
        "node name to address map",
        "Space-separated NODE=ADDRESS items giving the real-server address of cluster nodes; \
         names not listed are resolved once per refresh.",
    ),
    p(
        "ip_forward",
        false,
        "boolean",
        Some("false"),
        "enable IP forwarding (NAT)",
        "At start, set net.ipv4.ip_forward=1 (net.ipv6.conf.all.forwarding=1 for an IPv6 \
         vip), which masq (NAT) forwarding needs. Left as it is at stop.",
    ),
    p(
        "expire_nodest_conn",
        false,
        "boolean",
        Some("false"),
        "expire connections to removed real servers",
        "At start, set net.ipv4.vs.expire_nodest_conn=1: a connection to a real server that \
         was removed is dropped on its next packet, so clients notice at once.",
    ),
    p(
        "expire_quiescent_template",
        false,
        "boolean",
        Some("false"),
        "expire persistence templates of quiesced real servers",
        "At start, set net.ipv4.vs.expire_quiescent_template=1: persistent clients of a real \
         server at weight 0 are rescheduled.",
    ),
    p(
        "engine",
        false,
        "string",
        Some("netlink"),
        "how IPVS is programmed",
        "netlink, ipvsadm or userspace (passed to the daemon as --engine). Unset, the \
         configuration file's engine= directive decides (default netlink). An --engine \
         option before --ocf on the agent's command line wins over this parameter.",
    ),
    p(
        "ipvsadm",
        false,
        "string",
        None,
        "ipvsadm program",
        "The ipvsadm program for the ipvsadm engine (passed as --ipvsadm).",
    ),
    p(
        "run_dir",
        false,
        "string",
        Some("/var/run"),
        "directory of pid files",
        "Where the daemon's pid file ldirectord.NAME.pid lives.",
    ),
];

/// The real-server agent's parameters.
pub const REALSERVER_PARAMS: &[Param] = &[
    Param {
        required: true,
        ..p(
            "vip",
            true,
            "string",
            None,
            "virtual IP address",
            "The virtual IP address to accept locally without answering ARP for it.",
        )
    },
    p(
        "ldirectord",
        false,
        "string",
        Some("/usr/sbin/ldirectord"),
        "ldirectord-rs program",
        "The ldirectord-rs program the agent script runs.",
    ),
    p(
        "mode",
        false,
        "string",
        Some("dr"),
        "dr or tun",
        "dr: the address goes on lo as a host route (/32 or /128); tun: on tunl0 (IPIP).",
    ),
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn render(
    name: &str,
    long: &str,
    short: &str,
    params: &[Param],
    actions: &[(&str, &str)],
) -> String {
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\"?>\n<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n");
    x.push_str(&format!(
        "<resource-agent name=\"{name}\" version=\"{}\">\n<version>1.0</version>\n",
        env!("CARGO_PKG_VERSION")
    ));
    x.push_str(&format!(
        "<longdesc lang=\"en\">\n{}\n</longdesc>\n<shortdesc lang=\"en\">{}</shortdesc>\n<parameters>\n",
        escape(long),
        escape(short)
    ));
    for prm in params {
        x.push_str(&format!(
            "<parameter name=\"{}\" unique=\"{}\" required=\"{}\">\n<longdesc lang=\"en\">{}</longdesc>\n<shortdesc lang=\"en\">{}</shortdesc>\n",
            prm.name,
            u8::from(prm.unique),
            u8::from(prm.required),
            escape(prm.long),
            escape(prm.short)
        ));
        match prm.default {
            Some(d) => x.push_str(&format!(
                "<content type=\"{}\" default=\"{}\"/>\n",
                prm.kind,
                escape(d)
            )),
            None => x.push_str(&format!("<content type=\"{}\"/>\n", prm.kind)),
        }
        x.push_str("</parameter>\n");
    }
    x.push_str("</parameters>\n<actions>\n");
    for (action, attrs) in actions {
        x.push_str(&format!("<action name=\"{action}\" {attrs}/>\n"));
    }
    x.push_str("</actions>\n</resource-agent>\n");
    x
}

/// `ldirectord --ocf meta-data`.
pub fn director() -> String {
    render(
        "ldirectord",
        "ldirectord-rs as an OCF resource agent: runs the health-checking LVS director \
         daemon for a configuration file (as ocf:heartbeat:ldirectord does), or for a \
         virtual service given by parameters whose real servers come from the cluster \
         (nodes running a resource, a node attribute, a command), refreshed on every \
         monitor and applied to IPVS as a difference. reload applies changed parameters \
         and configuration without a restart.",
        "LVS director (ldirectord-rs)",
        DIRECTOR_PARAMS,
        &[
            ("start", "timeout=\"60s\""),
            ("stop", "timeout=\"60s\""),
            ("monitor", "timeout=\"20s\" interval=\"10s\" depth=\"0\""),
            ("reload", "timeout=\"60s\""),
            ("meta-data", "timeout=\"5s\""),
            ("validate-all", "timeout=\"20s\""),
        ],
    )
}

/// `ldirectord realserver --ocf meta-data`.
pub fn realserver() -> String {
    render(
        "ldirectord-realserver",
        "The real-server side of LVS direct routing or tunnelling: accepts the virtual IP \
         locally (on lo, or on tunl0) and sets arp_ignore=1 and arp_announce=2 so the host \
         never answers ARP for it. Idempotent, without bouncing the loopback interface.",
        "LVS-DR/TUN real server (ldirectord-rs)",
        REALSERVER_PARAMS,
        &[
            ("start", "timeout=\"20s\""),
            ("stop", "timeout=\"20s\""),
            ("monitor", "timeout=\"20s\" interval=\"10s\" depth=\"0\""),
            ("meta-data", "timeout=\"5s\""),
            ("validate-all", "timeout=\"20s\""),
        ],
    )
}

/// The sync-backup agent's parameters.
pub const SYNCBACKUP_PARAMS: &[Param] = &[
    Param {
        required: true,
        ..p(
            "interface",
            false,
            "string",
            None,
            "sync interface",
            "The network interface the directors' sync multicast arrives on (the master's \
             syncdaemon= interface on the active director).",
        )
    },
    p(
        "syncid",
        false,
        "integer",
        Some("0"),
        "sync id (0-255)",
        "Accept only sync messages of this id (the master's syncdaemon= id); 0 accepts every \
         id.",
    ),
    p(
        "group",
        false,
        "string",
        None,
        "multicast group",
        "The sync multicast group, when the master's syncgroup= is not the kernel's default \
         224.0.0.81.",
    ),
    p(
        "port",
        false,
        "integer",
        None,
        "multicast port",
        "The sync UDP port, when the master's syncport= is not the kernel's default 8848.",
    ),
    p(
        "engine",
        false,
        "string",
        Some("netlink"),
        "netlink or ipvsadm",
        "How the kernel is told: netlink (generic netlink) or ipvsadm (runs ipvsadm \
         --start-daemon backup). The userspace engine has no connection synchronisation.",
    ),
    p(
        "ipvsadm",
        false,
        "string",
        None,
        "ipvsadm program",
        "The ipvsadm program for engine=ipvsadm (default /sbin/ipvsadm, else \
         /usr/sbin/ipvsadm).",
    ),
    p(
        "ldirectord",
        false,
        "string",
        None,
        "ldirectord-rs program",
        "The ldirectord-rs program (the agent script looks in the usual places without it).",
    ),
];

/// `ldirectord sync-backup --ocf meta-data`.
pub fn syncbackup() -> String {
    render(
        "ldirectord-syncbackup",
        "The kernel's IPVS backup sync daemon, which installs the connection entries the \
         active director's master sync daemon (syncdaemon= in ldirectord.cf) multicasts, so \
         that a standby that takes over the VIP continues every established connection. Run \
         it as a clone on every director: it is a kernel thread and does not disturb the \
         active director's master. The standby must have the virtual services before the \
         VIP arrives (since Linux 5.9 IPVS sees no packet in a network namespace without a \
         virtual service, and the standby's own stack resets the connections): order the \
         director before the VIP (group: director, then IPaddr2), or run the director as a \
         clone on every node. monitor warns when no virtual service exists here.",
        "IPVS connection-sync backup (ldirectord-rs)",
        SYNCBACKUP_PARAMS,
        &[
            ("start", "timeout=\"20s\""),
            ("stop", "timeout=\"20s\""),
            ("monitor", "timeout=\"20s\" interval=\"10s\" depth=\"0\""),
            ("meta-data", "timeout=\"5s\""),
            ("validate-all", "timeout=\"20s\""),
        ],
    )
}
