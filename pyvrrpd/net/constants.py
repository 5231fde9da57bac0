"""Linux socket and netlink constants that Python 3.11's `socket` module does not export.

Values are from the kernel UAPI headers named next to each group; they are ABI and never change.
"""

# <netinet/in.h>, <linux/in.h>
IPPROTO_VRRP = 112
IP_PKTINFO = 8  # in `socket` only from Python 3.12
IP_MULTICAST_ALL = 49
# <linux/in6.h>
IPV6_MULTICAST_ALL = 29

# <linux/if_ether.h>
ETH_P_ALL = 0x0003
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD

# <asm-generic/socket.h>
SO_RCVBUFFORCE = 33

# <linux/sockios.h>
SIOCGIFFLAGS = 0x8913
SIOCGIFHWADDR = 0x8927
# <linux/if.h>
IFF_UP = 0x1
IFF_RUNNING = 0x40
IFNAMSIZ = 16

# <linux/if_addr.h>
IFA_F_SECONDARY = 0x01
IFA_F_NODAD = 0x02
IFA_F_DADFAILED = 0x08
IFA_F_TENTATIVE = 0x40
# <linux/if_link.h>
IN6_ADDR_GEN_MODE_RANDOM = 3
# <linux/rtnetlink.h>
RTNH_F_ONLINK = 0x04
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_SITE = 200
RT_SCOPE_LINK = 253
RT_SCOPE_HOST = 254
RT_SCOPE_NOWHERE = 255
RT_TABLE_DEFAULT = 253
RT_TABLE_MAIN = 254
RT_TABLE_LOCAL = 255
