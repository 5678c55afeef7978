#include "seal.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstring>
#include <memory>
#include <stdexcept>

#include "crypto.hpp"

namespace oauth2 {

namespace {

constexpr size_t kNonce = 12;
constexpr size_t kTag = 16;

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};

Digest derive(std::string_view key_material) {
  std::string in = "oauth2-seal-v1";
  in.append(key_material);
  Digest k = sha256(in);
  wipe(in);
  return k;
}

}  // namespace

std::string seal(std::string_view key_material, std::string_view plaintext) {
  Digest key = derive(key_material);
  unsigned char nonce[kNonce];
  random_bytes(nonce, sizeof(nonce));
  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree> ctx(EVP_CIPHER_CTX_new());
  std::string out(kNonce + plaintext.size() + kTag, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  std::memcpy(o, nonce, kNonce);
  int len = 0, fin = 0;
  bool ok =
      ctx && EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), nonce) == 1 &&
      EVP_EncryptUpdate(ctx.get(), o + kNonce, &len,
                        reinterpret_cast<const unsigned char*>(plaintext.data()),
                        static_cast<int>(plaintext.size())) == 1 &&
      EVP_EncryptFinal_ex(ctx.get(), o + kNonce + len, &fin) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag, o + kNonce + plaintext.size()) ==
          1;
  OPENSSL_cleanse(key.data(), key.size());
  if (!ok) throw std::runtime_error("seal failed");
  return out;
}

std::optional<std::string> unseal(std::string_view key_material, std::string_view sealed) {
  if (sealed.size() < kNonce + kTag) return std::nullopt;
  Digest key = derive(key_material);
  const auto* in = reinterpret_cast<const unsigned char*>(sealed.data());
  size_t n = sealed.size() - kNonce - kTag;
  std::string out(n, '\0');
  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree> ctx(EVP_CIPHER_CTX_new());
  int len = 0, fin = 0;
  unsigned char tag[kTag];
  std::memcpy(tag, in + kNonce + n, kTag);
  bool ok =
      ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), in) == 1 &&
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, in + kNonce,
                        static_cast<int>(n)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag, tag) == 1 &&
      EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len, &fin) == 1;
  OPENSSL_cleanse(key.data(), key.size());
  if (!ok) {
    wipe(out);
    return std::nullopt;
  }
  return out;
}

}  // namespace oauth2
