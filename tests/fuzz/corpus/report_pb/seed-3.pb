!
darfursd2human-rights8@Zj