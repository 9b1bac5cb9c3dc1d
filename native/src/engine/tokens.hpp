// The token scheme (cadenza/tokens.py): note names, chord tokens in normal
// order, and voicing a chord near a centre.  Parsing happens at construction.
#pragma once
#include <cstdint>
#include <string>

namespace cadenza::eng {

constexpr int MAX_CHORD_CLASSES = 12;

struct TokenInfo {
  bool chord = false;
  int midi = -1;                      // a note token's MIDI number
  int classes = 0;                    // a chord's pitch classes, in the token's order
  int pcs[MAX_CHORD_CLASSES] = {0};
  uint16_t mask = 0;                  // the pitch classes it sounds, as bits
};

// Parses ``token``; false (with ``why`` set) when it is not of the scheme.
bool parse_token(const std::string& token, TokenInfo& out, std::string& why);

std::string midi_to_name(int midi);
// The chord token (normal order joined by '.') of a non-empty pitch-class set.
std::string chord_token(uint16_t mask);

// tokens.voice_chord: MIDI notes upwards from the first class near ``centre``;
// returns the count written to ``notes``.
int voice_chord(const int* pcs, int count, int centre, int* notes);

}  // namespace cadenza::eng
