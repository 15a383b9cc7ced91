// libolm (Debian's libolm-dev): Olm and Megolm, the Matrix end-to-end encryption ratchets,
// plus its ed25519 signing (cross-signing keys) and utility (signature checks, SHA-256).
#include <olm/olm.h>
#include <olm/pk.h>
