// The device authorization grant (RFC 8628).  A device asks the device
// authorization endpoint for a device code and a user code; the user signs
// in at the verification page (oauth2_device), types the user code and
// approves or denies; meanwhile the device polls the token endpoint with
// grant_type urn:ietf:params:oauth:grant-type:device_code.
//
// Two token records, neither holding a value in clear:
//   kDevice      under the TokenId of the device code: the client, scope,
//                resources, the user once approved, the grant's family,
//                used_at once redeemed, and in data its state, interval,
//                last poll and expiry (the record lingers after that
//                expiry so that a late poll gets expired_token)
//   kDeviceUser  under a TokenId derived from the SHA-256 of the
//                normalised user code: in data the device record's id;
//                deleted once the user decided

#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "endpoint_util.hpp"

namespace oauth2::detail {

constexpr const char* kDeviceGrant = "urn:ietf:params:oauth:grant-type:device_code";
constexpr int64_t kDeviceInterval = 5;  // RFC 8628 3.2's default
constexpr int64_t kDeviceLinger = 300;  // a late poll still hears expired_token
constexpr size_t kUserCodeLen = 8;      // 20^8: about 34 bits
// RFC 8628 6.1: no vowels (no words), no look-alike characters
constexpr std::string_view kUserCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ";

// "bcdf-ghjk", " BCDFGHJK " -> "BCDFGHJK"; nullopt: not 8 characters of
// the alphabet once dashes and spaces are dropped and letters uppercased
std::optional<std::string> normalize_user_code(std::string_view in);
// "BCDFGHJK" -> "BCDF-GHJK"
std::string format_user_code(std::string_view code);

// A device record's state (its data)
struct DeviceState {
  enum Status { kPending, kApproved, kDenied } status = kPending;
  int64_t interval = kDeviceInterval;
  int64_t last_poll = 0;
  int64_t expires = 0;  // the device code's expiry (expires_at lingers)
};
std::optional<DeviceState> parse_device_state(std::string_view data);
std::string encode_device_state(const DeviceState& s);

// The pending device request a user code names, if live at now.
struct PendingDevice {
  TokenId device_id;
  Token device;
  TokenId user_code_id;
};
std::optional<PendingDevice> find_user_code(Txn& txn, std::string_view realm,
                                            std::string_view normalized, int64_t now);
// The user approves (or denies) the pending request the user code names,
// in txn (committed).  false: no live request has that code.
bool decide_device(Txn& txn, std::string_view realm, std::string_view normalized, uint64_t user,
                   bool approve, int64_t now);

// The token endpoint's device_code grant (RFC 8628 3.4, 3.5).
EndpointResult device_code_grant(Store& store, const Request& req, const Form& form,
                                 const Client& c, const std::string& asked);

}  // namespace oauth2::detail
