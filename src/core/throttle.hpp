// Throttles of failed authentications (R17, R83, R84), decided here and
// counted in front of the store: in the shim's shared memory
// (oauth2_limit_zone), or in the admin daemon's memory.  With
// oauth2_client_auth_limit n per window:
//
//   a:<address>                  any failure from the address     3n
//   ca:<client_id>|<address>     a client with an imported secret n
//   pa:<account>|<address>       a user's password                n
//   uc:<user>                    user codes a signed-in user typed n
//                                wrong (RFC 8628 5.1, device.hpp)
//
// Nothing here is keyed by a client or an account alone: a generated
// client secret (256 bits) cannot be guessed, so failures never lock a
// client, and the lock of a user account lives in the store (lockout.hpp),
// where it spares the addresses and browsers that signed in recently.

#pragma once

#include <string>
#include <string_view>

#include "../../include/oauth2.h"

namespace oauth2 {

// The key a counter is kept under: each realm counts on its own (a flood
// of one site never throttles another), so the realm comes first, then
// an unprintable separator no realm name holds, then key; a key too long
// for the shim's zone is replaced by its hash.
std::string counter_key(std::string_view realm, std::string_view key);

// The address as the throttles count it: IPv4 as it is, IPv6 by its /64
// (what one subscriber usually holds), anything else as it is.
std::string throttle_address(std::string_view text);

class Throttle {
 public:
  // limit 0: off
  Throttle(const oauth2_counters_t& counters, std::string_view realm, unsigned limit,
           unsigned window, std::string_view address);

  bool enabled() const { return c_.check != nullptr && limit_ != 0; }
  const std::string& address() const { return address_; }

  // Seconds before another attempt may be made, 0 if it may now.  A key
  // the counters have no room for waits a second: refused, never let
  // through uncounted (R84).
  unsigned address_wait() const;
  unsigned client_wait(std::string_view client_id) const;
  unsigned password_wait(std::string_view account) const;
  unsigned user_code_wait(std::string_view user) const;

  void address_failed() const;
  void client_failed(std::string_view client_id) const;
  void password_failed(std::string_view account) const;
  void user_code_failed(std::string_view user) const;

 private:
  unsigned check(const std::string& key, unsigned limit) const;
  void failed(const std::string& key) const;

  oauth2_counters_t c_;
  unsigned limit_;
  unsigned window_;
  std::string realm_;
  std::string address_;
};

}  // namespace oauth2
